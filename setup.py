"""mmseg-longtail: long-tailed semantic segmentation on MMSegmentation 1.x."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def get_version() -> str:
    ns: dict = {}
    with open(osp.join(HERE, 'mmseg_longtail', 'version.py')) as f:
        exec(f.read(), ns)
    return ns['__version__']


def add_mim_extension() -> None:
    """Ship configs/ and tools/ inside the package as ``.mim`` (like mmseg).

    ``_base_ = ['mmseg_longtail::...']`` and ``mim train mmseg_longtail CFG``
    look for them there. Editable installs get symlinks so edits show at once.
    """
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif any(a in sys.argv for a in ('sdist', 'bdist_wheel', 'install', 'build')):
        mode = 'copy'
    else:
        return
    mim_path = osp.join(HERE, 'mmseg_longtail', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in ('configs', 'tools', 'model-index.yml'):
        src = osp.join(HERE, name)
        dst = osp.join(mim_path, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmseg-longtail',
        version=get_version(),
        description='Long-tailed semantic segmentation losses, heads, data sets '
        'and metrics for MMSegmentation 1.x',
        long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
        long_description_content_type='text/markdown',
        python_requires='>=3.8',
        # subpackages too: tests/ must not ship in the wheel
        packages=find_packages(exclude=('configs', 'configs.*', 'tools',
                                        'tools.*', 'tests', 'tests.*',
                                        'docs', 'docs.*')),
        include_package_data=True,
        package_data={
            'mmseg_longtail':
            ['.mim/model-index.yml', '.mim/configs/**/*', '.mim/tools/**/*']
        },
        # torch is not listed, as in OpenMMLab's own packages: it is installed
        # first, CPU or CUDA build by the user's choice (tools/install.sh).
        # Listing it would also let pip "upgrade" setuptools past 70 for
        # torch's build-time pin, removing the pkg_resources mmengine needs.
        install_requires=[
            'mmengine>=0.10.0,<0.11',
            'mmcv>=2.0.0,<2.2.0',
            'mmsegmentation>=1.2.0,<1.3',
            'mmpretrain>=1.2.0,<1.3',
            'numpy',
            'matplotlib',
            'tqdm',
        ],
        extras_require={
            'tests': ['pytest', 'h5py', 'scipy'],
            'h5': ['h5py'],
        },
        zip_safe=False,
    )

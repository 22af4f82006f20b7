"""Importing the plugin registers components and does nothing else; the
runtime layers never import the experiment or analysis layers."""
import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, Set

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / 'mmseg_longtail'
RUNTIME = ('models', 'datasets', 'evaluation', 'engine', 'utils')
STUDY = ('experiments', 'analysis')

# Entry points of the stack a plugin could be tempted to replace:
# (module, attribute path).
ENTRY_POINTS = [
    ('mmengine.runner.checkpoint', 'CheckpointLoader._schemes'),
    ('mmengine.runner.checkpoint', 'load_from_local'),
    ('mmengine.runner.checkpoint', 'load_from_http'),
    ('mmengine.runner.runner', 'init_dist'),
    ('mmengine.dist', 'init_dist'),
    ('mmengine.runner.runner', 'save_checkpoint'),
    ('mmengine.runner.runner', 'Runner.wrap_model'),
    ('mmengine.runner.runner', 'Runner.save_checkpoint'),
    ('mmengine.runner.runner', 'Runner.load_checkpoint'),
    ('mmengine.config.config', 'get_installed_path'),
    ('mmseg.models.decode_heads.decode_head', 'BaseDecodeHead.__init__'),
    ('mmcv.transforms', 'LoadImageFromFile.transform'),
    ('mmseg.datasets.transforms', 'LoadAnnotations.transform'),
    ('torch', 'load'),
    ('torch.serialization', 'load'),
]

PROBE = '''
import importlib, json, sys
ENTRY_POINTS = {entry_points!r}
modules = sorted({{m for m, _ in ENTRY_POINTS}}) + [
    'mmseg.models', 'mmseg.datasets', 'mmseg.evaluation', 'mmseg.engine',
    'mmengine.runner', 'mmengine.hooks']
for name in modules:
    importlib.import_module(name)

def resolve(module, path):
    obj = sys.modules[module]
    for part in path.split('.'):
        obj = getattr(obj, part)
    return obj

before = {{f'{{m}}:{{p}}': resolve(m, p) for m, p in ENTRY_POINTS}}
schemes = dict(before['mmengine.runner.checkpoint:CheckpointLoader._schemes'])
import mmengine.config.utils as config_utils
table = dict(config_utils.MODULE2PACKAGE)
loaded = set(sys.modules)
meta_path = list(sys.meta_path)

import mmseg_longtail  # noqa: F401

changed = [k for k, v in before.items() if resolve(*k.split(':')) is not v]
changed += [f'CheckpointLoader._schemes[{{k!r}}]' for k, v in
            resolve('mmengine.runner.checkpoint',
                    'CheckpointLoader._schemes').items()
            if schemes.get(k) is not v]
if dict(config_utils.MODULE2PACKAGE) != table:
    changed.append('MODULE2PACKAGE')
if list(sys.meta_path) != meta_path:
    changed.append('sys.meta_path')
new = sorted(set(sys.modules) - loaded)
print(json.dumps(dict(changed=changed, new=new)))
'''


def _probe() -> Dict:
    code = PROBE.format(entry_points=ENTRY_POINTS)
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_replaces_nothing_and_loads_no_study_layer():
    result = _probe()
    assert result['changed'] == []
    new = result['new']
    assert 'mmseg_longtail.registry' in new  # the import did happen
    for layer in STUDY:
        assert not [m for m in new
                    if m.startswith(f'mmseg_longtail.{layer}')], layer
    assert not [m for m in new if m.split('.')[0] == 'matplotlib']


def test_nothing_runs_at_interpreter_start():
    """No start-up hook: no ``.pth`` file on the path runs code that
    mentions the plugin (an editable install's plain path line is no code),
    and a fresh interpreter that imports mmengine has not heard of it."""
    hooks = []
    for folder in {p for p in sys.path if p and Path(p).is_dir()}:
        for pth in Path(folder).glob('*.pth'):
            for line in pth.read_text(errors='replace').splitlines():
                if line.startswith('import') and 'mmseg_longtail' in line:
                    hooks.append(f'{pth}: {line}')
    assert hooks == []
    code = ('import sys, mmengine.config.utils as u\n'
            "print('mmseg_longtail' in u.MODULE2PACKAGE, "
            "any(m.startswith('mmseg_longtail') for m in sys.modules))")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=120, cwd='/')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ['False', 'False']


# ------------------------------------------------------------ import graph
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ''
    base = module.split('.')
    if not is_package:
        base.pop()
    base = base[:len(base) - (node.level - 1)]
    return '.'.join(base + ([node.module] if node.module else []))


def import_graph() -> Dict[str, Set[str]]:
    """Module -> the plugin modules its import statements need initialised
    (anywhere in the file, at module level or inside functions).

    ``from a.b import c`` needs ``a.b`` and, if it is a module, ``a.b.c``,
    and the packages on the way. A module's own enclosing packages are
    being initialised when it runs, so an edge to one of them is only drawn
    where the statement needs that package's names (``import a`` or ``from
    a import attr``): that is the half-initialised-package cycle.
    """
    files = {_module_name(p): p for p in PACKAGE.rglob('*.py')}
    graph: Dict[str, Set[str]] = {}
    for name, path in files.items():
        is_package = path.name == '__init__.py'
        passed, named = set(), set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                named.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                submodules = {f'{base}.{a.name}' for a in node.names}
                submodules &= set(files)
                passed.add(base)
                if len(submodules) < len(node.names):
                    named.add(base)  # attributes of ``base`` itself
                named.update(submodules)
        edges = set()
        for target in passed | named:
            parts = target.split('.')
            for i in range(1, len(parts) + 1):
                prefix = '.'.join(parts[:i])
                if prefix not in files:
                    continue
                enclosing = name.startswith(prefix + '.')
                if not enclosing or prefix in named:
                    edges.add(prefix)
        edges.discard(name)
        graph[name] = edges
    return graph


def _reachable(graph: Dict[str, Set[str]], start: str) -> Set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_runtime_never_imports_the_study_layer():
    graph = import_graph()
    runtime = [m for m in graph
               if m.split('.')[1:2] and m.split('.')[1] in RUNTIME]
    assert len(runtime) > 40  # the walk found the package
    offenders = {
        m: sorted(t for t in _reachable(graph, m)
                  if t.split('.')[1:2] and t.split('.')[1] in STUDY)
        for m in runtime
    }
    assert {m: t for m, t in offenders.items() if t} == {}


def test_no_import_cycle():
    graph = import_graph()
    cycles = [m for m in graph if m in _reachable(graph, m)]
    assert cycles == []


def test_graph_sees_imports_inside_functions(tmp_path):
    """The walk is not blind to the imports it forbids (an import inside a
    function counts)."""
    tree = ast.parse('def f():\n    from mmseg_longtail.experiments import '
                     'records\n')
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))
    assert _resolve('mmseg_longtail.models.x', False,
                    node) == 'mmseg_longtail.experiments'

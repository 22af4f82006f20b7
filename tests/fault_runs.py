"""Helpers of the fault-tolerance tests: a small training config on the
synthetic data with everything that draws random numbers (dropout, random
flips, a shuffled sampler, evaluations between checkpoints), runs of
tools/train.py in 1 or 2 processes, and a bit-exact comparison of final
checkpoints.

The runs are real processes (own pid, signals, SIGKILL, exit status,
interpreter exit), but most of a tiny run's time is Python starting and
importing torch, mmengine and mmseg. So the tools are started through a fork
server (``popen``, ``run_python``; see ``_SERVER``): a process that has
imported what tools/train.py and tools/test.py import at their top, and forks
one child per run that runs the tool as ``__main__``. torchrun's workers
(``PYTHON_EXEC``) and the interpreter of tools/dist_*.sh (``PYTHON``,
``fork_env``) come from it too, through a small proxy executable. A run whose
environment differs from the server's in anything read at start-up goes to a
fresh interpreter, as does every run where CUDA is visible or
``MMSEG_LONGTAIL_TESTS_FRESH_PYTHON=1`` is set (the way to check that a
result does not depend on the server).
"""
import atexit
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch

from tests.conftest import REPO_ROOT

CONFIG = """
_base_ = [{base!r}]
custom_imports = dict(
    imports=['mmseg_longtail', 'tests.test_configs.data.fault_hooks'],
    allow_failed_imports=False)
train_dataloader = dict(
    batch_size=2, num_workers={workers},
    persistent_workers={persistent},
    dataset=dict(length=16))
val_dataloader = dict(dataset=dict(length=4))
test_dataloader = val_dataloader
model = dict(backbone=dict(base_channels=8), decode_head=dict(
    in_channels=8, channels=8, dropout_ratio=0.3))
train_cfg = dict(max_iters={max_iters}, val_interval=2)
randomness = dict(seed=0)
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0,
                        end={max_iters}, by_epoch=False)]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=3, max_keep_ckpts=1))
custom_hooks = {hooks!r}
{extra}
"""


def write_config(path: Path, hooks: List[dict], max_iters: int,
                 workers: int = 0, extra: str = '') -> Path:
    """A config of the quick-start U-Net (width 8, dropout 0.3) with
    ``hooks`` as its ``custom_hooks`` and ``extra`` config lines."""
    path.write_text(CONFIG.format(
        base=str(REPO_ROOT / 'configs/quickstart/unet_tiny_synthetic_ce.py'),
        workers=workers, persistent=workers > 0, hooks=hooks,
        max_iters=max_iters, extra=extra))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def train_command(config: Path, work: Path, procs: int,
                  resume: bool = False) -> List[str]:
    """tools/train.py in one process, or under torchrun in ``procs``."""
    if procs == 1:
        args = [sys.executable, 'tools/train.py']
    else:
        args = [sys.executable, '-m', 'torch.distributed.run',
                f'--nproc_per_node={procs}', f'--master_port={free_port()}',
                'tools/train.py']
    args += [str(config), '--work-dir', str(work)]
    args += ['--launcher', 'pytorch'] if procs > 1 else []
    return args + (['--resume'] if resume else [])


def train_env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1',
                PYTHONPATH=str(REPO_ROOT))


def start_training(config: Path, work: Path, procs: int,
                   resume: bool = False, slot: int = 0):
    """``train_command`` started (through the fork server ``slot``), its
    output (stdout and stderr) in the returned process's ``stdout``."""
    return popen(train_command(config, work, procs, resume)[1:],
                 env=train_env(), slot=slot)


def finish(proc, expect: Optional[int] = 0,
           timeout: float = 600) -> subprocess.CompletedProcess:
    """Wait for a run of ``start_training``; ``expect``: the exit status
    (None: any non-zero)."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    proc = subprocess.CompletedProcess(proc.args, proc.returncode, out)
    if expect is None:
        assert proc.returncode != 0, proc.stdout[-3000:]
    else:
        assert proc.returncode == expect, proc.stdout[-6000:]
    return proc


def train(config: Path, work: Path, procs: int, resume: bool = False,
          expect: Optional[int] = 0,
          slot: int = 0) -> subprocess.CompletedProcess:
    """Run to the end; ``expect``: the exit status (None: any non-zero)."""
    return finish(start_training(config, work, procs, resume, slot), expect)


def final_checkpoint(work: Path, iters: int) -> dict:
    return torch.load(work / f'iter_{iters}.pth', map_location='cpu',
                      weights_only=False)


def same_state(a: dict, b: dict) -> bool:
    """Bit-identical weights, buffers (BN statistics) and momenta."""
    sa, sb = a['state_dict'], b['state_dict']
    assert sa.keys() == sb.keys()
    weights = all(torch.equal(sa[k], sb[k]) for k in sa)
    ma, mb = a['optimizer']['state'], b['optimizer']['state']
    assert ma.keys() == mb.keys()
    momenta = all(torch.equal(ma[k]['momentum_buffer'],
                              mb[k]['momentum_buffer']) for k in ma)
    return weights and momenta


def last_checkpoint_name(work: Path) -> str:
    return Path((work / 'last_checkpoint').read_text().strip()).name


def wait_until(condition: Callable[[], Any], proc=None, timeout: float = 300,
               what: str = 'progress', poll: float = 0.1) -> Any:
    """Poll ``condition()`` until it is truthy and return its value; fail
    when ``proc`` (a Popen) ends first, with its output, or after
    ``timeout`` seconds."""
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read()[-3000:] if proc.stdout else ''
            raise AssertionError(f'exited {proc.returncode} before '
                                 f'{what}:\n{out}')
        if time.time() > deadline:
            raise AssertionError(f'no {what} after {timeout} s')
        time.sleep(poll)


def log_matches(path: Path, pattern: str) -> Callable[[], bool]:
    """A condition: the file exists and ``pattern`` is found in it."""
    return lambda: path.is_file() and re.search(pattern,
                                                path.read_text()) is not None


# ---------------------------------------------------------------------------
# The fork server: tools/*.py started as children of a process that has
# already imported what they import.

FRESH_VAR = 'MMSEG_LONGTAIL_TESTS_FRESH_PYTHON'
SOCKET_VAR = 'MMSEG_LONGTAIL_TESTS_FORK_SERVER'
LOG_VAR = 'MMSEG_LONGTAIL_TESTS_FORK_SERVER_LOG'  # append its log there

# What tools/train.py and tools/test.py import before their main() runs,
# and third-party modules the runner imports on first use (environment
# report, visualizer, config dump). Nothing of tests/ and nothing that only
# a config's custom_imports brings: those are still imported by the run.
PRELOAD = ('torch', 'mmengine.config', 'mmengine.logging', 'mmengine.runner',
           'mmseg.registry', 'mmseg_longtail.engine.cpu_distributed',
           'mmseg_longtail.engine.cpu_threads',
           'mmseg_longtail.utils.config_scope', 'torchvision',
           'matplotlib.pyplot', 'yapf.yapflib.yapf_api')

# Environment variables read only after start-up (sys.path is rebuilt from
# PYTHONPATH, torchrun's variables are read when the process group starts):
# a run may differ from the server in these, not in anything else.
RUNTIME_VARS = ('PYTHONPATH', 'PYTHON', 'PYTHON_EXEC', SOCKET_VAR,
                'PYTEST_CURRENT_TEST', 'PORT', 'NNODES', 'NODE_RANK',
                'MASTER_ADDR', 'MASTER_PORT', 'RANK', 'LOCAL_RANK',
                'WORLD_SIZE', 'LOCAL_WORLD_SIZE', 'GROUP_RANK',
                'GROUP_WORLD_SIZE', 'ROLE_RANK', 'ROLE_NAME',
                'ROLE_WORLD_SIZE', 'TORCH_NCCL_ASYNC_ERROR_HANDLING')
RUNTIME_PREFIXES = ('TORCHELASTIC_', )

# Run with ``python -c`` (so that nothing of tests/ is imported): imports
# PRELOAD, then forks a child per request and answers with its pid and,
# when it has ended, its wait status. The child takes the request's
# stdin/stdout/stderr, working directory, environment and arguments and runs
# the script (or ``-m`` module) as __main__ at the top level, so that it
# exits as a fresh interpreter would (SystemExit, tracebacks, atexit,
# KeyboardInterrupt). numpy's global generator and torch's default one get
# new seeds as in a new interpreter (torch's fixed default seed where it has
# one; Python's random reseeds itself after a fork); the hash seed is the
# server's (see ``prestart``). The imported objects are frozen (gc.freeze):
# collections in the children skip them. A child whose client goes away is
# killed; so are all when the test session (the server's stdin) goes away.
_SERVER = r'''
import importlib, json, os, runpy, select, signal, socket, sys
CONF = json.loads(sys.argv[1])
BASE_ENV = dict(os.environ)
for name in CONF['preload']:
    importlib.import_module(name)
import gc
import numpy
import torch
TORCH_SEED = torch.initial_seed()
BASE_PATH = sys.path[1:]
# what the imports did to the environment (cv2, torch set variables): done
# to each run's environment too
SET_BY_IMPORTS = {k: v for k, v in os.environ.items() if BASE_ENV.get(k) != v}
UNSET_BY_IMPORTS = BASE_ENV.keys() - os.environ.keys()


def startup_env(env):
    return {k: v for k, v in env.items() if k not in CONF['runtime_vars']
            and not k.startswith(tuple(CONF['runtime_prefixes']))}


def refusal(req):
    # the run's environment must be the server's before or after the
    # imports (the latter: a run started by a run of this server)
    a, b = startup_env(req['env']), startup_env(BASE_ENV)
    after = startup_env(os.environ)
    differ = sorted(k for k in a.keys() | b.keys()
                    if a.get(k) != b.get(k) and a.get(k) != after.get(k))
    return 'environment differs in ' + ', '.join(differ) if differ else ''


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def serve():
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(CONF['socket'])
    listener.listen(64)
    threads = len(os.listdir('/proc/self/task'))
    if threads != 1:  # forking would copy one of them only
        print(f'{threads} threads after the imports', flush=True)
        sys.exit(3)
    gc.freeze()  # what the imports made stays shared with the children
    print('ready', flush=True)
    children = {}  # pid -> its client's connection, None once that closed
    while True:
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if not pid:
                break
            conn = children.pop(pid, None)
            if conn is not None:
                try:
                    conn.send(json.dumps(dict(status=status)).encode())
                except OSError:
                    pass
                conn.close()
        open_conns = [c for c in children.values() if c is not None]
        ready, _, _ = select.select([0, listener] + open_conns, [], [], 0.05)
        for r in ready:
            if r == 0:
                if not os.read(0, 1024):  # the test session has gone
                    for pid in children:
                        kill(pid)
                    sys.exit(0)
            elif r is listener:
                conn, _ = listener.accept()
                try:
                    msg, fds, _, _ = socket.recv_fds(conn, 1 << 22, 3)
                    req = json.loads(msg)
                except (OSError, ValueError):
                    conn.close()
                    continue
                why = refusal(req)
                if why:
                    print(f'fresh interpreter for {req["argv"][:2]}: {why}',
                          file=sys.stderr, flush=True)
                    conn.send(json.dumps(dict(fresh=why)).encode())
                if not why:
                    pid = os.fork()
                    if pid == 0:  # the run: nothing of the server's
                        listener.close()
                        for c in list(children.values()) + [conn]:
                            if c is not None:
                                c.close()
                        return req, fds
                    children[pid] = conn
                    conn.send(json.dumps(dict(pid=pid)).encode())
                else:
                    conn.close()
                for fd in fds:
                    os.close(fd)
            else:  # a client has gone: its run goes too
                try:
                    gone = not r.recv(1024)
                except OSError:
                    gone = True
                if gone:
                    for pid, c in list(children.items()):
                        if c is r:
                            children[pid] = None
                            kill(pid)
                    r.close()


def run(req, fds):
    if req['new_session']:
        os.setsid()
    for fd, std in zip(fds, (0, 1, 2)):
        os.dup2(fd, std)
    for fd in set(fds) - {0, 1, 2}:
        os.close(fd)
    os.chdir(req['cwd'])
    os.environ.clear()
    os.environ.update(req['env'])
    os.environ.update(SET_BY_IMPORTS)
    for k in UNSET_BY_IMPORTS:
        del os.environ[k]
    numpy.random.seed()
    if TORCH_SEED == 67280421310721:  # torch's fixed default seed
        torch.manual_seed(TORCH_SEED)
    else:  # a seed drawn at start-up
        torch.seed()
    extra = [p for p in req['env'].get('PYTHONPATH', '').split(os.pathsep)
             if p]
    argv = req['argv']
    if argv[0] == '-m':
        sys.path[:] = [os.getcwd()] + extra + BASE_PATH
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name='__main__', alter_sys=True)
    else:
        sys.path[:] = ([os.path.dirname(os.path.abspath(argv[0]))] + extra +
                       BASE_PATH)
        sys.argv = list(argv)
        runpy.run_path(argv[0], run_name='__main__')


run(*serve())
'''

# Stands in for the interpreter where a launcher starts Python itself
# (torchrun's PYTHON_EXEC, tools/dist_*.sh's PYTHON): hands the command to
# the fork server with its own stdin/stdout/stderr, passes the signals it
# gets on to the run, and ends as the run ended (exit status, or killed by
# the same signal); what the server does not take runs in a fresh
# interpreter (exec).
_PROXY = r'''#!@PYTHON@ -I
import json, os, signal, socket, sys
PYTHON = '@PYTHON@'


def fresh():
    os.execv(PYTHON, [PYTHON] + sys.argv[1:])


args = sys.argv[1:]
while args[:1] == ['-u']:  # the server's output is unbuffered
    args = args[1:]
path = os.environ.get('@SOCKET_VAR@')
if not (path and args and (not args[0].startswith('-') or
                           (args[0] == '-m' and len(args) > 1))):
    fresh()
conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
try:
    conn.connect(path)
    req = dict(argv=args, cwd=os.getcwd(), env=dict(os.environ),
               new_session=False)
    socket.send_fds(conn, [json.dumps(req).encode()], [0, 1, 2])
    reply = json.loads(conn.recv(1 << 16) or b'{}')
except (OSError, ValueError):
    fresh()
if 'pid' not in reply:
    fresh()
pid = reply['pid']


def forward(signum, frame):
    try:
        os.kill(pid, signum)
    except OSError:
        pass


for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
               signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(signum, forward)
msg = conn.recv(1 << 16)
if not msg:  # the server has gone
    os.kill(pid, signal.SIGKILL)
    sys.exit(1)
status = json.loads(msg)['status']
if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
sys.exit(os.waitstatus_to_exitcode(status))
'''


def _server_env() -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env.setdefault('OMP_NUM_THREADS', '1')
    env.pop('PYTHONPATH', None)  # per run: sys.path is rebuilt from it
    return env


class _Server:
    """One fork server process, its socket and its proxy executable."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix='lt-fork-server-')
        self.socket = os.path.join(self.dir, 'socket')
        self.proxy = os.path.join(self.dir, 'python')
        with open(self.proxy, 'w') as f:
            f.write(_PROXY.replace('@PYTHON@', sys.executable).replace(
                '@SOCKET_VAR@', SOCKET_VAR))
        os.chmod(self.proxy, stat.S_IRWXU)
        conf = dict(socket=self.socket, preload=PRELOAD,
                    runtime_vars=RUNTIME_VARS,
                    runtime_prefixes=RUNTIME_PREFIXES)
        self.log = open(os.path.join(self.dir, 'server.log'), 'wb')
        self.proc = subprocess.Popen(
            [sys.executable, '-c', _SERVER, json.dumps(conf)], cwd=REPO_ROOT,
            env=_server_env(), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.log)
        self._ready: Optional[bool] = None
        self._lock = threading.Lock()

    def ready(self) -> bool:
        """Whether it has imported PRELOAD and listens (waits for it)."""
        with self._lock:
            if self._ready is None:
                fd = self.proc.stdout.fileno()
                readable, _, _ = select.select([fd], [], [], 300)
                line = os.read(fd, 1024) if readable else b''
                self._ready = line.strip() == b'ready'
                if not self._ready:
                    self.close()
        return self._ready

    def run_env(self, env: dict) -> dict:
        """``env`` for a run of this server: torchrun's workers come from
        it too (unless ``env`` names another PYTHON_EXEC)."""
        env = dict({'PYTHON_EXEC': self.proxy}, **env)
        env[SOCKET_VAR] = self.socket
        return env

    def env(self) -> dict:
        """What makes a launcher's Python runs go through this server."""
        return {SOCKET_VAR: self.socket, 'PYTHON_EXEC': self.proxy,
                'PYTHON': self.proxy}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        keep = os.environ.get(LOG_VAR)
        if keep:  # what the server said (runs it sent to fresh ones)
            with open(keep, 'ab') as f:
                f.write(Path(self.log.name).read_bytes())
        shutil.rmtree(self.dir, ignore_errors=True)


_SERVERS: Dict[int, Optional[_Server]] = {}
_SERVERS_LOCK = threading.Lock()


def _fork_server_usable() -> bool:
    if os.environ.get(FRESH_VAR, '') not in ('', '0'):
        return False
    if not (sys.platform.startswith('linux') and hasattr(socket, 'send_fds')):
        return False
    # a process that forks must not have initialised CUDA; where CUDA is
    # visible the runs would use it, so they start fresh there
    return not torch.cuda.is_available()


def prestart(*slots: int) -> None:
    """Start the fork servers ``slots`` (default 0) without waiting for
    them. Each server's children share its hash seed (a new interpreter
    draws one): runs that must agree although started separately (a
    reference and a resumed run) use different slots, so that a result that
    depended on the seed would still show."""
    with _SERVERS_LOCK:
        for slot in slots or (0, ):
            if slot not in _SERVERS:
                _SERVERS[slot] = _Server() if _fork_server_usable() else None


def _server(slot: int) -> Optional[_Server]:
    prestart(slot)
    server = _SERVERS[slot]
    if server is not None and not server.ready():
        _SERVERS[slot] = None
        return None
    return server


@atexit.register
def _close_servers() -> None:
    for server in _SERVERS.values():
        if server is not None:
            server.close()
    _SERVERS.clear()


def fork_env(slot: int = 0) -> dict:
    """Environment variables for a launcher of Python runs (a shell script
    calling ``$PYTHON``, torchrun's workers): its runs go through the fork
    server; {} where there is none."""
    server = _server(slot)
    return server.env() if server is not None else {}


class Forked:
    """A run in a child of the fork server, with the part of
    ``subprocess.Popen``'s interface the tests use."""

    def __init__(self, args, conn, pid: int, stdout) -> None:
        self.args, self.pid, self.stdout = args, pid, stdout
        self.returncode: Optional[int] = None
        self._conn = conn

    def _receive(self, timeout: Optional[float]) -> bool:
        readable, _, _ = select.select([self._conn], [], [], timeout)
        if not readable:
            return False
        msg = self._conn.recv(1 << 16)
        self._conn.close()
        # no answer: the server has gone (and killed its children)
        self.returncode = (os.waitstatus_to_exitcode(
            json.loads(msg)['status']) if msg else -signal.SIGKILL)
        return True

    def poll(self) -> Optional[int]:
        if self.returncode is None:
            self._receive(0)
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        if self.returncode is None and not self._receive(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def communicate(self, timeout: Optional[float] = None):
        """(all of stdout, None) once the run has ended. Unlike Popen, it
        does not wait for processes the run left behind (data loader
        workers of a killed run notice only after seconds) to close the
        pipe: half a second after the run's end without output is enough."""
        deadline = None if timeout is None else time.time() + timeout

        def left():
            return None if deadline is None else max(0, deadline - time.time())

        out = None
        if self.stdout is not None:
            chunks = []
            fd = self.stdout.fileno()
            while True:
                ended = self.returncode is not None
                readable, _, _ = select.select(
                    [fd] + ([] if ended else [self._conn]), [], [],
                    min(0.5, left() or 0.5) if ended else left())
                if not readable:
                    if ended:
                        break
                    raise subprocess.TimeoutExpired(self.args, timeout)
                if self._conn in readable:
                    self._receive(0)
                if fd in readable:
                    data = self.stdout.buffer.read1(1 << 16)
                    if not data:
                        break
                    chunks.append(data)
            self.stdout.close()
            self.stdout = None
            out = b''.join(chunks).decode('utf-8', 'replace')
        self.wait(left())
        return out, None

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _fork(server: _Server, args: List[str], cwd, env: dict, stdout, stderr,
          new_session: bool) -> Optional[Forked]:
    """Hand the run to ``server``; None if it sends it to a fresh one."""
    opened, read_end = [os.open(os.devnull, os.O_RDWR)], None

    def descriptor(stream, inherited: int) -> int:
        # Popen's meanings of None, DEVNULL, a descriptor or a file object
        if stream is None:
            return inherited
        if stream == subprocess.DEVNULL:
            return opened[0]
        return stream if isinstance(stream, int) else stream.fileno()

    if stdout == subprocess.PIPE:
        read_end, out = os.pipe()
        opened.append(out)
    else:
        out = descriptor(stdout, 1)
    assert stderr != subprocess.PIPE, 'stderr=PIPE: use STDOUT'
    err = out if stderr == subprocess.STDOUT else descriptor(stderr, 2)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(server.socket)
        req = dict(argv=args, cwd=str(cwd), env=server.run_env(env),
                   new_session=new_session)
        socket.send_fds(conn, [json.dumps(req).encode()],
                        [opened[0], out, err])
        reply = json.loads(conn.recv(1 << 16) or b'{}')
    except (OSError, ValueError):
        reply = {}
    finally:
        for fd in opened:
            os.close(fd)
    if 'pid' not in reply:
        conn.close()
        if read_end is not None:
            os.close(read_end)
        return None
    reader = (open(read_end, 'r', encoding='utf-8', errors='replace')
              if read_end is not None else None)
    return Forked(args, conn, reply['pid'], reader)


def popen(args: Sequence[Union[str, Path]], cwd: Optional[Path] = None,
          env: Optional[dict] = None, stdout=subprocess.PIPE,
          stderr=subprocess.STDOUT, start_new_session: bool = False,
          slot: int = 0):
    """``subprocess.Popen([python] + args, text=True, ...)``, as a child of
    the fork server ``slot`` where there is one (see the module's doc)."""
    args = [str(a) for a in args]
    cwd = cwd or REPO_ROOT
    env = dict(os.environ if env is None else env)
    servable = args and (not args[0].startswith('-') or
                         (args[0] == '-m' and len(args) > 1))
    server = _server(slot) if servable else None
    if server is not None:
        proc = _fork(server, args, cwd, env, stdout, stderr,
                     start_new_session)
        if proc is not None:
            return proc
    return subprocess.Popen([sys.executable] + args, cwd=cwd, env=env,
                            stdout=stdout, stderr=stderr, text=True,
                            start_new_session=start_new_session)


def tool_env(env: Optional[dict] = None) -> dict:
    """tests.conftest.run_tool's environment: this one, OMP_NUM_THREADS=1
    unless set, unbuffered output, and ``env``."""
    full_env = dict(os.environ)
    full_env.setdefault('OMP_NUM_THREADS', '1')
    full_env['PYTHONUNBUFFERED'] = '1'
    full_env.update(env or {})
    return full_env


def run_python(args: Sequence[Union[str, Path]], cwd: Optional[Path] = None,
               timeout: int = 600, env: Optional[dict] = None,
               check: bool = True,
               slot: int = 0) -> subprocess.CompletedProcess:
    """tests.conftest.run_tool (``python <args>`` from the repository root,
    output captured, OMP_NUM_THREADS=1 unless set) through the fork
    server."""
    proc = popen(args, cwd=cwd, env=tool_env(env), slot=slot)
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(map(str, args))} exited '
                             f'{proc.returncode}:\n{out[-6000:]}')
    return subprocess.CompletedProcess(args, proc.returncode, out)

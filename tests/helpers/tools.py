"""Running the repository's command-line tools in a subprocess."""
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_tool(path: str, *args, env=None, timeout: int = 600) -> str:
    """Run ``tools/<path>`` with this Python from the repository root; return
    its stdout, failing the test (with both streams' tails) on a non-zero exit."""
    cmd = [sys.executable, osp.join(ROOT, 'tools', path)] + [str(a) for a in args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    assert out.returncode == 0, f'{cmd}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}'
    return out.stdout

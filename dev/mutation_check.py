"""Mutation check: do the tests fail when the code is wrong?

Each mutant is a small deliberate bug stated as exact text edits (file,
original snippet, replacement). One at a time, the mutant is applied to a
temporary copy of the working tree (the real tree is never written), the
tests it names run there, and the copy is restored, on Ctrl-C too. A mutant
whose tests still pass *survived*: a bug the suite would not notice.

A snippet that does not occur exactly once stops the run before anything
runs, so the list fails loudly when the code it mutates moves. Run on demand
(not in CI); a full run takes tens of minutes on 2 cores::

    python dev/mutation_check.py               # fast tests named per mutant
    python dev/mutation_check.py -k spike      # mutants whose name contains 'spike'
    python dev/mutation_check.py --full        # the whole fast suite per mutant
    python dev/mutation_check.py --with-slow   # also mutants only slow tests catch
    python dev/mutation_check.py --list

Exit status: 0 when no mutant survived, 1 when some did, 2 on a stale
mutant list or a failing baseline.
"""
import argparse
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

SNNMLP = 'mmsnnmlp/models/snnmlp.py'
LAYERS = 'mmsnnmlp/models/layers.py'
VARIANTS = 'mmsnnmlp/models/variants.py'
READING = 'mmsnnmlp/checkpoint/reading.py'
INTEGRITY = 'mmsnnmlp/checkpoint/integrity.py'
CONVERTING = 'mmsnnmlp/checkpoint/converting.py'
FITTING = 'mmsnnmlp/checkpoint/fitting.py'
LIF = 'mmsnnmlp/ops/lif.py'
TRITON = 'mmsnnmlp/ops/lif_triton.py'
TRITON_UTILS = 'mmsnnmlp/ops/triton_utils.py'
DISPATCH = 'mmsnnmlp/ops/dispatch.py'
COCO_CHECK = 'mmsnnmlp/datasets/coco.py'
DATA_CHECK = 'mmsnnmlp/datasets/common.py'
SEG_CHECK = 'mmsnnmlp/datasets/seg.py'
HOOKS = 'mmsnnmlp/engine/hooks.py'
TRAIN = 'tools/train.py'
TEST = 'tools/test.py'
COCO_BASE = 'configs/det/_base_/snnmlp_coco-instance_ms-crop-3x.py'
ADE_BASE = 'configs/seg/_base_/snnmlp_8xb2-160k_ade20k-512x512.py'
SEG_B = 'configs/seg/snnmlp-b_upernet_8xb2-160k_ade20k-512x512.py'
DET_S = 'configs/det/mask-rcnn_snnmlp-s_fpn_ms-crop-3x_coco.py'

BACKBONE_TESTS = ('tests/models/test_backbone.py', 'tests/models/test_variants.py')
CHECKPOINT_TESTS = ('tests/checkpoint/test_checkpoint_loading.py',
                    'tests/checkpoint/test_checkpoint_io.py')
LIF_TESTS = ('tests/ops/test_lif_exact.py', 'tests/ops/test_lif_values.py',
             'tests/ops/test_lif_trace.py', 'tests/ops/test_lif_module.py',
             'tests/ops/test_lif_properties.py', 'tests/models/test_backbone_any_size.py',
             'tests/ops/test_lif_triton.py', 'tests/ops/test_nhwc_paths.py')
TOOL_TESTS = ('tests/tools/test_tools.py', 'tests/datasets/test_data_check.py')
ROTATION_TESTS = ('tests/engine/test_checkpoint_rotation.py',)
RNG_TESTS = ('tests/engine/test_rng_after_resume.py',)
LABEL_TESTS = ('tests/datasets/test_label_range.py',)
PAPER_SETTINGS_TESTS = ('tests/configs/test_paper_settings.py',)


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    edits: Tuple[Tuple[str, str, str], ...]  # (file, exact original, replacement)
    tests: Tuple[str, ...]  # pytest arguments selecting the tests that should fail
    slow: bool = False  # only slow (end-to-end) tests can catch it
    required: bool = False  # one of the mutants the suite must kill


# The spike condition u > Vth turned into u >= Vth, place by place. The
# reference (lif_reference and lif_trace) tests it in three places: the reset,
# and the output of each.
SPIKE_REFERENCE = (
    (LIF, 'potential = u.masked_fill(u > vth, 0.0)', 'potential = u.masked_fill(u >= vth, 0.0)'),
    (LIF, 'return _with_tail(torch.where(u > vth, u, vth), x, dim)',
     'return _with_tail(torch.where(u >= vth, u, vth), x, dim)'),
    (LIF, '    fired = u > vth\n    return (_with_tail(',
     '    fired = u >= vth\n    return (_with_tail('))
# The fast path runs vectorised on CPU for a finite Vth (threshold at the next
# float above Vth) and generically elsewhere: each mutant changes both.
SPIKE_FAST_FORWARD = (
    (LIF, 'torch.gt(u, vth_c, out=fired)', 'torch.ge(u, vth_c, out=fired)'),
    (LIF, 'F.threshold_(torch.neg(u, out=minus_o), threshold, -0.0)',
     'F.threshold_(torch.neg(u, out=minus_o), -vth_f, -0.0)'))
# (u >= Vth in the output alone is an equivalent mutant: at u == Vth both give Vth.)
NAN_FAST_OUTPUT = (
    (LIF, 'torch.fmax(u, vth_c, out=outv.select(step, j))',
     'torch.maximum(u, vth_c, out=outv.select(step, j))'),
    (LIF, 'torch.nan_to_num_(out.narrow(dim, 0, processed), nan=vth_f',
     'torch.nan_to_num_(out.narrow(dim, 0, 0), nan=vth_f'))
SPIKE_FAST_BACKWARD = (
    (LIF, 'f = u > vth_c', 'f = u >= vth_c'),
    (LIF, 'masks.append(torch.gt(u, vth_f)', 'masks.append(torch.ge(u, vth_f)'),
    (LIF, 'minus_o.append(F.threshold_(torch.neg(u), threshold, -0.0))',
     'minus_o.append(F.threshold_(torch.neg(u), -vth_f, -0.0))'))
SPIKE_TRITON = (TRITON, 'fired = u > vth\n        if BACKWARD:',
                'fired = u >= vth\n        if BACKWARD:')
SPIKE_TRITON_VTH_GRAD = (TRITON, 'full & (u <= vth)', 'full & (u < vth)')

MUTANTS: List[Mutant] = [
    # -- required ----------------------------------------------------------------
    Mutant('with_cp_ignored', 'the with_cp flag ignored (never checkpoints)',
           ((LAYERS, 'if self.with_cp and x.requires_grad:',
             'if False and self.with_cp and x.requires_grad:'),),
           BACKBONE_TESTS, required=True),
    Mutant('drop_path_no_rescale', 'drop path without the 1/keep rescale',
           ((LAYERS, 'return x * mask / keep', 'return x * mask'),),
           BACKBONE_TESTS, required=True),
    Mutant('drop_path_constant', 'a constant drop-path schedule instead of the linear one',
           ((LAYERS, 'probs = [spec.drop_path_rate * i / max(total - 1, 1) for i in range(total)]',
             'probs = [spec.drop_path_rate for i in range(total)]'),),
           BACKBONE_TESTS, required=True),
    Mutant('tau_vth_swapped', 'lif_tau and lif_vth swapped at construction',
           ((LAYERS, 'init_tau=spec.lif_tau, init_vth=spec.lif_vth,',
             'init_tau=spec.lif_vth, init_vth=spec.lif_tau,'),),
           BACKBONE_TESTS, required=True),
    Mutant('learn_flags_ignored', 'learn_tau/learn_vth ignored',
           ((LAYERS, 'learn_tau=spec.learn_tau, learn_vth=spec.learn_vth,',
             'learn_tau=True, learn_vth=True,'),),
           BACKBONE_TESTS, required=True),
    Mutant('patch_embed_pad_top_left', 'PatchEmbed pads the top/left instead of bottom/right',
           ((LAYERS, 'return self.norm(self.proj(pad_to_multiple(x, self.patch_size)))',
             'return self.norm(self.proj(F.pad(x, ((-x.shape[3]) % self.patch_size, 0, '
             '(-x.shape[2]) % self.patch_size, 0))))'),),
           CHECKPOINT_TESTS, required=True),
    Mutant('patch_merging_pad_top_left', 'PatchMerging pads the top/left',
           ((LAYERS, 'x = pad_to_multiple(x, 2)',
             'x = F.pad(x, (x.shape[3] % 2, 0, x.shape[2] % 2, 0))'),),
           CHECKPOINT_TESTS, required=True),
    Mutant('loader_accepts_missing_norms', 'missing keys whose names contain "norm" accepted',
           ((FITTING,
             'may_miss=lambda key: key.startswith(OUTPUT_NORM_PREFIX))',
             "may_miss=lambda key: 'norm' in key)"),),
           CHECKPOINT_TESTS, required=True),
    Mutant('output_norms_never_loaded', 'output norms never loaded from a full checkpoint',
           ((FITTING,
             'for key in [k for k in state if k.startswith(OUTPUT_NORM_PREFIX) and k not in own]:',
             'for key in [k for k in state if k.startswith(OUTPUT_NORM_PREFIX)]:'),),
           CHECKPOINT_TESTS, required=True),
    Mutant('module_prefix_kept', 'a DataParallel "module." prefix not stripped',
           ((CONVERTING,
             "return OrderedDict((k[7:] if k.startswith('module.') else k, v) "
             "for k, v in state.items())",
             'return OrderedDict(state)'),),
           CHECKPOINT_TESTS, required=True),
    Mutant('hub_cache_ignored', 'the hub cache ignored (a download every time)',
           ((READING, 'if not osp.isfile(cached):', 'if True:'),),
           CHECKPOINT_TESTS, required=True),
    Mutant('triton_fma_contraction', 'FMA contraction switched on in the Triton launch',
           ((TRITON_UTILS, 'NO_FP_FUSION = dict(enable_fp_fusion=False)',
             'NO_FP_FUSION = dict(enable_fp_fusion=True)'),),
           ('tests/ops/test_lif_triton.py',), required=True),
    Mutant('triton_off_by_default', 'the Triton path disabled by default on CUDA',
           ((DISPATCH, "choice = 'triton' if x.is_cuda and triton is not None else 'torch'",
             "choice = 'torch'"),),
           ('tests/ops/test_ops_impl.py',), required=True),
    Mutant('spike_ge_everywhere', 'spike u >= Vth instead of u > Vth, in every implementation',
           (*SPIKE_REFERENCE, *SPIKE_FAST_FORWARD, *SPIKE_FAST_BACKWARD,
            SPIKE_TRITON, SPIKE_TRITON_VTH_GRAD),
           LIF_TESTS, required=True),
    # -- the same, one implementation at a time ---------------------------
    Mutant('spike_ge_reference', 'u >= Vth in lif_reference only', SPIKE_REFERENCE, LIF_TESTS),
    Mutant('spike_ge_fast_forward', 'u >= Vth in the fast forward only', SPIKE_FAST_FORWARD,
           LIF_TESTS),
    Mutant('nan_fast_output', 'a NaN potential reaches the fast output instead of Vth',
           NAN_FAST_OUTPUT, LIF_TESTS),
    Mutant('spike_ge_fast_backward', 'u >= Vth in the fast backward only',
           SPIKE_FAST_BACKWARD, LIF_TESTS),
    Mutant('spike_ge_triton', 'u >= Vth in the Triton recurrence only', (SPIKE_TRITON,),
           LIF_TESTS),
    Mutant('spike_ge_triton_vth_grad', 'u >= Vth in the Triton dVth sum only',
           (SPIKE_TRITON_VTH_GRAD,), LIF_TESTS),
    # -- more of our own ------------------------------------------------------
    Mutant('merging_channel_order', 'PatchMerging concatenates (0,1) before (1,0)',
           ((LAYERS, 'x = torch.cat([x[..., 0::2, 0::2], x[..., 1::2, 0::2],',
             'x = torch.cat([x[..., 0::2, 0::2], x[..., 0::2, 1::2],'),
            (LAYERS, '                       x[..., 0::2, 1::2], x[..., 1::2, 1::2]], 1)',
             '                       x[..., 1::2, 0::2], x[..., 1::2, 1::2]], 1)')),
           CHECKPOINT_TESTS),
    Mutant('drop_path_in_eval', 'drop path also active in eval mode',
           ((LAYERS, 'if prob == 0.0 or not training:', 'if prob == 0.0:'),), BACKBONE_TESTS),
    Mutant('norm_eps', 'GroupNorm eps 1e-6 instead of 1e-5',
           ((LAYERS, 'NormAct(channels, eps=1e-5,', 'NormAct(channels, eps=1e-6,'),),
           CHECKPOINT_TESTS),
    Mutant('default_vth', 'default initial Vth 0.1 (the training script) instead of 0.25',
           ((VARIANTS, '    lif_vth: float = 0.25\n', '    lif_vth: float = 0.1\n'),),
           BACKBONE_TESTS),
    Mutant('frozen_stages_off_by_one', 'frozen_stages freezes one stage too few',
           ((SNNMLP, 'for i in range(self.frozen_stages):',
             'for i in range(self.frozen_stages - 1):'),), BACKBONE_TESTS),
    Mutant('test_loads_loosely', 'tools/test.py evaluates a checkpoint of another model',
           ((TEST, '        check_state_dict_fits(runner.model, checkpoint, args.checkpoint)',
             '        pass'),), ('tests/tools/test_tools.py',)),
    Mutant('lif_tail_zeroed', 'the fast LIF zeroes the tail instead of passing it through',
           ((LIF, '_tail(out, dim, processed).copy_(_tail(xc, dim, processed))',
             '_tail(out, dim, processed).zero_()'),), LIF_TESTS),
    Mutant('lif_vth_grad_inverted', 'the fast backward sums dVth over firing positions',
           ((LIF, 'grad_vth = grad_vth + torch.where(f, zero, gj).sum()',
             'grad_vth = grad_vth + torch.where(f, gj, zero).sum()'),
            (LIF, 'torch.bitwise_and(gj.view(bits), mask.bitwise_not_())',
             'torch.bitwise_and(gj.view(bits), mask)')), LIF_TESTS),
    Mutant('shape_mismatch_accepted', 'mis-shaped checkpoint tensors not reported',
           ((FITTING, 'for k in state if k in own and state[k].shape != own[k].shape]',
             'for k in state if False]'),), CHECKPOINT_TESTS),
    Mutant('unsafe_unpickling', 'checkpoints unpickled without weights_only',
           ((READING, 'map_location=map_location, weights_only=True)',
             'map_location=map_location, weights_only=False)'),), CHECKPOINT_TESTS),
    Mutant('legacy_pickle_refused', 'legacy (non-zip) pickles refused as foreign files',
           ((INTEGRITY, "elif head[:1] == b'\\x80':", 'elif False:'),),
           CHECKPOINT_TESTS),
    Mutant('test_overwrites_outputs', 'tools/test.py overwrites --out/--metrics-json',
           ((TEST, 'if path and not args.force and os.path.exists(path) and',
             'if False and path and os.path.exists(path) and'),), TOOL_TESTS),
    Mutant('no_data_check_ignored', 'tools/train.py checks the data despite --no-data-check',
           ((TRAIN, "        if not args.no_data_check:\n            try:\n"
             "                check_data(cfg, dataloader_keys(cfg, 'train'))",
             "        if True:\n            try:\n"
             "                check_data(cfg, dataloader_keys(cfg, 'train'))"),), TOOL_TESTS),
    Mutant('auto_scale_lr_dropped', '--auto-scale-lr does not reach the config',
           ((TRAIN, 'cfg.auto_scale_lr.enable = True', 'pass'),), TOOL_TESTS),
    Mutant('full_check_any_size', 'COCO images decoded whatever the dataset size',
           ((COCO_CHECK, 'if wants_full_check(full, len(images)):',
             'if wants_full_check(full, 0):'),), TOOL_TESTS),
    Mutant('full_check_limit_exclusive', 'full check only below the limit (< not <=)',
           ((DATA_CHECK, 'return num_images <= FULL_CHECK_LIMIT if full is None else full',
             'return num_images < FULL_CHECK_LIMIT if full is None else full'),), TOOL_TESTS),
    # -- hooks, data checks, config values ----------------------------------
    Mutant('epoch_resume_numpy_state', 'epoch-based resume does not restore numpy\'s RNG',
           ((HOOKS, "np.random.set_state(_plain_to_numpy_state(self._pending['numpy']))",
             'pass'),), RNG_TESTS),
    Mutant('epoch_resume_python_state', "epoch-based resume does not restore Python's RNG",
           ((HOOKS, "random.setstate(_plain_to_python_state(self._pending['python']))",
             'pass'),), RNG_TESTS),
    Mutant('rng_restored_every_iter', 'RNGStateHook re-applies the torch state before every '
           'iteration after an iter-based resume',
           ((HOOKS, "            torch.set_rng_state(self._pending['torch'])\n"
             "            self._pending = None\n\n\n",
             "            torch.set_rng_state(self._pending['torch'])\n\n\n"),), RNG_TESTS),
    Mutant('rotation_deletes_newest', 'max_keep_ckpts removes the newest kept checkpoint',
           ((HOOKS, 'expired.append(self.keep_ckpt_ids.popleft())',
             'expired.append(self.keep_ckpt_ids.pop())'),), ROTATION_TESTS),
    Mutant('rotation_never_expires', 'a full keep list drops ids without deleting their files',
           ((HOOKS, 'if len(self.keep_ckpt_ids) == self.max_keep_ckpts:',
             'if len(self.keep_ckpt_ids) > self.max_keep_ckpts:'),), ROTATION_TESTS),
    Mutant('rotation_ids_not_saved', 'kept ids not in the checkpoint: a resumed run never '
           'removes the earlier checkpoints',
           ((HOOKS, "            runner.message_hub.update_info('keep_ckpt_ids', "
             "list(self.keep_ckpt_ids))\n", ''),), ROTATION_TESTS),
    Mutant('seg_label_off_by_one', 'the seg label check without reduce_zero_label accepts '
           'label == num_classes',
           ((SEG_CHECK, 'return (labels < num_classes) | (labels == ignore_index)',
             'return (labels < num_classes + (not reduce_zero)) | (labels == ignore_index)'),),
           LABEL_TESTS),
    Mutant('seg_255_not_ignored', 'the seg label check reports the ignore index 255',
           ((SEG_CHECK, 'return (labels < num_classes) | (labels == ignore_index)',
             'return ((labels < num_classes) | (labels == ignore_index)) & (raw != 255)'),),
           LABEL_TESTS),
    Mutant('ade20k_reduce_default_ignored', "ADE20KDataset's default reduce_zero_label ignored",
           ((SEG_CHECK, "return ds.get('type') == 'ADE20KDataset'", 'return False'),),
           LABEL_TESTS),
    Mutant('coco_weight_decay', 'COCO weight decay 0.01 instead of 0.05',
           ((COCO_BASE, 'betas=(0.9, 0.999), weight_decay=0.05)',
             'betas=(0.9, 0.999), weight_decay=0.01)'),), PAPER_SETTINGS_TESTS),
    Mutant('coco_warmup_1000', 'COCO warm-up of 1000 iterations (mmdet 3 Swin) instead of 500',
           ((COCO_BASE, "dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, "
             "end=500),",
             "dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, "
             "end=1000),"),), PAPER_SETTINGS_TESTS),
    Mutant('b_upernet_drop_path', "the B UperNet drop path left at T's 0.3 instead of 0.5",
           ((SEG_B, "backbone=dict(arch='base', drop_path_rate=0.5, ",
             "backbone=dict(arch='base', "),), PAPER_SETTINGS_TESTS),
    Mutant('ade_tta_ratio_dropped', 'the ADE multi-scale test without ratio 1.75',
           ((ADE_BASE, 'img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]',
             'img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5]'),), PAPER_SETTINGS_TESTS),
    Mutant('ade_betas', 'ADE AdamW betas (0.9, 0.99)',
           ((ADE_BASE, 'lr=6e-5, betas=(0.9, 0.999)', 'lr=6e-5, betas=(0.9, 0.99)'),),
           PAPER_SETTINGS_TESTS),
    Mutant('s_det_tiny_weights', 'Mask R-CNN S (and Cascade S) start from the tiny checkpoint',
           ((DET_S, 'snnmlp_small_83.30.pt', 'snnmlp_tiny_81.88.pt'),), PAPER_SETTINGS_TESTS),
]


class StaleMutant(RuntimeError):
    """A snippet that no longer occurs exactly once in its file."""


def tracked_files(root: str) -> List[str]:
    """Tracked and untracked-but-not-ignored files: what the suite needs."""
    out = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                         cwd=root, check=True, capture_output=True)
    return [f for f in out.stdout.decode().split('\0') if f and osp.isfile(osp.join(root, f))]


def copy_tree(root: str, dest: str) -> None:
    for rel in tracked_files(root):
        os.makedirs(osp.dirname(osp.join(dest, rel)) or dest, exist_ok=True)
        shutil.copy2(osp.join(root, rel), osp.join(dest, rel))


def mutated_texts(mutant: Mutant, read) -> Dict[str, str]:
    """{file: mutated text}; raises StaleMutant unless each snippet occurs once."""
    texts: Dict[str, str] = {}
    for file, old, new in mutant.edits:
        text = texts[file] if file in texts else read(file)
        count = text.count(old)
        if count != 1:
            raise StaleMutant(f'{mutant.name}: {file} holds {count} copies of {old!r}')
        texts[file] = text.replace(old, new)
    return texts


def pytest_command(python: str, selection: Sequence[str], with_slow: bool) -> List[str]:
    cmd = [python, '-m', 'pytest', '-x', '-q', '-p', 'no:cacheprovider', *selection]
    return cmd if with_slow else cmd + ['-m', 'not slow']


def run_tests(copy: str, cmd: List[str], timeout: float) -> Tuple[str, float, str]:
    """('passed' | 'failed' | 'error' | 'timeout', seconds, output tail)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [copy] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]),
        # no .pyc files: a same-size mutant written within the same second as
        # the original must never be served from a stale bytecode cache
        PYTHONDONTWRITEBYTECODE='1')
    start = time.time()
    try:
        out = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        return 'timeout', time.time() - start, ''
    tail = (out.stdout + out.stderr)[-1500:]
    # pytest: 0 all passed, 1 some failed; 2-5 interrupted, internal/usage error, none collected
    status = {0: 'passed', 1: 'failed'}.get(out.returncode, 'error')
    return status, time.time() - start, tail


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('-k', dest='pattern', default='', help='only mutants whose name '
                        'contains this')
    parser.add_argument('--full', action='store_true', help='run the whole fast suite '
                        '(-m "not slow") per mutant instead of its own tests')
    parser.add_argument('--with-slow', action='store_true',
                        help='also run mutants only slow tests can catch (minutes each)')
    parser.add_argument('--timeout', type=float, default=1800, help='seconds per test run')
    parser.add_argument('--python', default=sys.executable, help='interpreter for pytest')
    parser.add_argument('--list', action='store_true', help='list the mutants and exit')
    args = parser.parse_args(argv)

    mutants = [m for m in MUTANTS if args.pattern in m.name and (args.with_slow or not m.slow)]
    if args.list:
        for m in MUTANTS:
            tags = ' [required]' * m.required + ' [slow]' * m.slow
            print(f'{m.name:30s} {m.description}{tags}')
        return 0
    if not mutants:
        print(f'no mutant matches {args.pattern!r}', file=sys.stderr)
        return 2

    def read(file):
        with open(osp.join(ROOT, file)) as f:
            return f.read()

    stale = []
    for m in mutants:  # all checked before anything runs
        try:
            mutated_texts(m, read)
        except (StaleMutant, FileNotFoundError) as err:
            stale.append(str(err))
    if stale:
        print('Stale mutant list (update dev/mutation_check.py):\n  ' +
              '\n  '.join(stale), file=sys.stderr)
        return 2

    copy = tempfile.mkdtemp(prefix='mmsnnmlp_mutation_')
    results = []
    try:
        copy_tree(ROOT, copy)
        probe = subprocess.run(
            [args.python, '-c', 'import mmsnnmlp; print(mmsnnmlp.__file__)'], cwd=copy,
            env=dict(os.environ, PYTHONPATH=copy), capture_output=True, text=True)
        if not probe.stdout.strip().startswith(copy):
            print(f'The copy is not what gets imported: {probe.stdout}{probe.stderr}',
                  file=sys.stderr)
            return 2

        def selection(m):
            return ['tests'] if args.full else list(m.tests)

        baseline = sorted({t for m in mutants for t in selection(m)})
        status, seconds, tail = run_tests(
            copy, pytest_command(args.python, baseline, args.with_slow), args.timeout)
        print(f'baseline ({len(baseline)} selections): {status} in {seconds:.0f} s', flush=True)
        if status != 'passed':
            print(tail, file=sys.stderr)
            return 2

        for i, m in enumerate(mutants, 1):
            originals = {f: open(osp.join(copy, f)).read() for f, _, _ in m.edits}
            texts = mutated_texts(m, lambda f: originals[f])
            try:
                for file, text in texts.items():
                    with open(osp.join(copy, file), 'w') as f:
                        f.write(text)
                status, seconds, tail = run_tests(
                    copy, pytest_command(args.python, selection(m), args.with_slow or m.slow),
                    args.timeout)
            finally:
                for file, text in originals.items():
                    with open(osp.join(copy, file), 'w') as f:
                        f.write(text)
            verdict = {'failed': 'killed', 'timeout': 'killed (timeout)',
                       'passed': 'SURVIVED', 'error': 'ERROR'}[status]
            results.append((m, verdict, seconds))
            print(f'[{i}/{len(mutants)}] {verdict:16s} {seconds:6.0f} s  {m.name}: '
                  f'{m.description}', flush=True)
            if status == 'error':
                print('    ' + tail.replace('\n', '\n    '), flush=True)
    except KeyboardInterrupt:
        print('interrupted (the working tree was never modified)', file=sys.stderr)
        interrupted = True
    else:
        interrupted = False
    finally:
        shutil.rmtree(copy, ignore_errors=True)

    survivors = [m for m, verdict, _ in results if verdict == 'SURVIVED']
    errors = [m for m, verdict, _ in results if verdict == 'ERROR']
    print(f'\n{len(results)} of {len(mutants)} mutants run: '
          f'{len(results) - len(survivors) - len(errors)} killed, {len(survivors)} survived, '
          f'{len(errors)} errors (tests not collected or crashed: check the selection)')
    for m in survivors:
        print(f'  survived: {m.name}: {m.description}' + ' [required]' * m.required)
    for m in errors:
        print(f'  error: {m.name}: {m.description}')
    if interrupted:
        return 130
    return 1 if survivors or errors else 0


if __name__ == '__main__':
    sys.exit(main())

"""tools/train.py and tools/test.py options, run in-process up to the point
where mmengine's Runner would start (a stand-in Runner records what it got)."""
import importlib.util
import json
import os.path as osp

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET = osp.join(ROOT, 'configs/toy/mask-rcnn_snnmlp-toy_fpn_toy-coco.py')
SEG = osp.join(ROOT, 'configs/toy/snnmlp-toy_upernet_toy-ade.py')


def _load_tool(name, folder='tools'):
    spec = importlib.util.spec_from_file_location(f'mmsnnmlp_tool_{name}',
                                                  osp.join(ROOT, folder, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Weights(torch.nn.Module):
    """What the `checkpoint` fixture holds: one parameter `w`."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))


class FakeRunner:
    """Records the config it is built from; trains nothing."""
    built = []

    def __init__(self):
        self.model = _Weights()

    @classmethod
    def from_cfg(cls, cfg):
        cls.built.append(cfg)
        return cls()

    def train(self):
        return None

    def test(self):
        return {'coco/bbox_mAP': 0.5}


@pytest.fixture
def tools(monkeypatch, tmp_path):
    """(train module, test module), run from an empty folder (no data/)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('LOCAL_RANK', '0')  # the tools set it; restored afterwards
    FakeRunner.built = []
    modules = {}
    for name in ('train', 'test'):
        module = _load_tool(name)
        monkeypatch.setattr(module, 'Runner', FakeRunner)
        modules[name] = module
    return modules['train'], modules['test']


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / 'model.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': {}}, path)
    return str(path)


@pytest.mark.parametrize('option, existing', [('--metrics-json', 'metrics.json'),
                                              ('--out', 'results.pkl')])
def test_test_tool_refuses_existing_outputs_without_force(tools, checkpoint, tmp_path, option,
                                                         existing):
    _, test_tool = tools
    target = tmp_path / existing
    target.write_text('earlier results')
    args = [DET, checkpoint, '--work-dir', str(tmp_path / 'w'), '--no-data-check',
            option, str(target)]
    with pytest.raises(SystemExit, match=rf'{target} exists; pass --force to overwrite it'):
        test_tool.main(args)
    assert target.read_text() == 'earlier results' and FakeRunner.built == []
    metrics = test_tool.main(args + ['--force'])
    assert len(FakeRunner.built) == 1 and metrics == {'coco/bbox_mAP': 0.5}
    if option == '--metrics-json':
        assert json.loads(target.read_text()) == metrics


def test_test_tool_refuses_a_non_empty_seg_output_folder(tools, checkpoint, tmp_path):
    _, test_tool = tools
    folder = tmp_path / 'pred'
    folder.mkdir()
    args = [SEG, checkpoint, '--work-dir', str(tmp_path / 'w'), '--no-data-check',
            '--out', str(folder)]
    test_tool.main(args)  # empty: fine
    (folder / 'a.png').write_bytes(b'earlier')
    with pytest.raises(SystemExit, match='exists; pass --force'):
        test_tool.main(args)
    test_tool.main(args + ['--force'])
    assert len(FakeRunner.built) == 2


def test_no_data_check_skips_the_check(tools, tmp_path):
    """Without data, the check stops the run; --no-data-check lets it through
    to the Runner (which would then meet the problem itself)."""
    train_tool, test_tool = tools
    args = [DET, '--work-dir', str(tmp_path / 'w')]
    with pytest.raises(SystemExit, match='Data check failed: train_dataloader: data root not '
                                         'found: data/toy/coco/'):
        train_tool.main(args)
    assert FakeRunner.built == []
    train_tool.main(args + ['--no-data-check'])
    assert len(FakeRunner.built) == 1


def test_auto_scale_lr_switch(tools, tmp_path):
    """The switch reaches the config (the LR itself is scaled by mmengine's
    Runner: checked in tests/tools/test_end_to_end.py)."""
    train_tool, _ = tools
    train_tool.main([DET, '--work-dir', str(tmp_path / 'a'), '--no-data-check'])
    train_tool.main([DET, '--work-dir', str(tmp_path / 'b'), '--no-data-check',
                     '--auto-scale-lr'])
    plain, scaled = FakeRunner.built
    assert plain.auto_scale_lr == dict(enable=False, base_batch_size=16)
    assert scaled.auto_scale_lr == dict(enable=True, base_batch_size=16)
    train_tool.main([SEG, '--work-dir', str(tmp_path / 'c'), '--no-data-check',
                     '--auto-scale-lr'])
    assert FakeRunner.built[-1].auto_scale_lr == dict(enable=True, base_batch_size=16)
    bare = tmp_path / 'no_base_batch.py'
    bare.write_text(f"_base_ = '{SEG}'\nauto_scale_lr = None\n")
    with pytest.raises(SystemExit, match='needs auto_scale_lr.base_batch_size'):
        train_tool.main([str(bare), '--work-dir', str(tmp_path / 'd'), '--no-data-check',
                         '--auto-scale-lr'])


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU-only refusal')
def test_amp_refused_without_a_gpu(tools, tmp_path):
    train_tool, _ = tools
    with pytest.raises(SystemExit, match='--amp needs a CUDA GPU'):
        train_tool.main([DET, '--work-dir', str(tmp_path / 'a'), '--no-data-check', '--amp'])
    assert FakeRunner.built == []


def test_test_tool_refuses_a_checkpoint_of_another_model(tools, tmp_path):
    """Strict loading: mmengine would load what fits and report a bogus score."""
    _, test_tool = tools
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': {'w': torch.zeros(1), 'decode_head.conv.weight': torch.zeros(2)},
                'meta': {}}, other)
    with pytest.raises(SystemExit, match=r'does not fit this _Weights model.*\n.*unexpected '
                                         r'keys \(1\): decode_head.conv.weight'):
        test_tool.main([DET, str(other), '--work-dir', str(tmp_path / 'w'), '--no-data-check'])


def test_mutation_list_still_applies():
    # dev/mutation_check.py runs on demand only; this keeps its mutants
    # from rotting silently when the code they edit moves.
    check = _load_tool('mutation_check', folder='dev')

    def read(file):
        with open(osp.join(ROOT, file)) as f:
            return f.read()

    assert len({m.name for m in check.MUTANTS}) == len(check.MUTANTS)
    for mutant in check.MUTANTS:
        texts = check.mutated_texts(mutant, read)  # raises StaleMutant
        assert all(text != read(file) for file, text in texts.items()), mutant.name
        for selection in mutant.tests:
            assert osp.isfile(osp.join(ROOT, selection.split('::')[0])), (mutant.name, selection)

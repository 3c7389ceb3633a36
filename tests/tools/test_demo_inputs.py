"""tools/demo/image_demo.py: bad images, its own input as --out-file, tiny images, colours."""
import os
import os.path as osp
import runpy

import cv2
import numpy as np
import pytest

from test_inference_inputs import CONFIGS, _checkpoint

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'tools/demo/image_demo.py')


def _demo(*argv):
    runpy.run_path(DEMO)['main']([str(a) for a in argv])


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp('checkpoints')
    return {library: _checkpoint(folder, library) for library in CONFIGS}


def _image(path, height, width, bgr=None):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8) if bgr is None else \
        np.full((height, width, 3), bgr, np.uint8)
    cv2.imwrite(str(path), image)
    return path


def test_bad_image_or_out_file_stops_before_inference(tmp_path):
    """Each is refused with the path named, before the (here missing) checkpoint is read."""
    missing_ckpt = tmp_path / 'never-read.pth'
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    with pytest.raises(SystemExit, match=f'Image file is empty \\(0 bytes\\): {empty}'):
        _demo(empty, CONFIGS['mmseg'], missing_ckpt, '--out-file', tmp_path / 'out.png')
    garbage = tmp_path / 'garbage.png'
    garbage.write_bytes(b'\x89PNG not really')
    with pytest.raises(SystemExit, match=f'Cannot decode image: {garbage}'):
        _demo(garbage, CONFIGS['mmseg'], missing_ckpt, '--out-file', tmp_path / 'out.png')
    image = _image(tmp_path / 'ok.png', 8, 8)
    with pytest.raises(SystemExit, match='cannot write images of this type; use .jpg or .png'):
        _demo(image, CONFIGS['mmseg'], missing_ckpt, '--out-file', tmp_path / 'out.xyz')
    with pytest.raises(SystemExit, match=f'--out-file is a folder: {tmp_path}'):
        _demo(image, CONFIGS['mmseg'], missing_ckpt, '--out-file', tmp_path)
    assert sorted(os.listdir(tmp_path)) == ['empty.jpg', 'garbage.png', 'ok.png']


@pytest.mark.slow
def test_refuses_to_overwrite_its_input(tmp_path, checkpoints, monkeypatch):
    image = _image(tmp_path / 'photo.png', 16, 16)
    before = image.read_bytes()
    (tmp_path / 'link.png').symlink_to(image)
    os.link(image, tmp_path / 'hardlink.png')
    (tmp_path / 'sub').mkdir()
    monkeypatch.chdir(tmp_path / 'sub')
    for out in (image, '../photo.png', tmp_path / 'sub/../photo.png', tmp_path / 'link.png',
                tmp_path / 'hardlink.png'):
        with pytest.raises(SystemExit, match='is the input image .*; refusing to overwrite it'):
            _demo(image, CONFIGS['mmseg'], checkpoints['mmseg'], '--out-file', out)
        assert image.read_bytes() == before, out
    # the input named through the link: the same file
    with pytest.raises(SystemExit, match='refusing to overwrite it'):
        _demo(tmp_path / 'link.png', CONFIGS['mmseg'], checkpoints['mmseg'], '--out-file', image)
    assert image.read_bytes() == before


@pytest.mark.slow
def test_one_pixel_images(tmp_path, checkpoints, capsys):
    """mmseg's drawing crashed on a 1x1 prediction; an existing --out-file is replaced."""
    image = _image(tmp_path / 'dot.png', 1, 1)
    runs = [('mmseg', 'functional'), ('mmseg', 'inferencer'), ('mmdet', 'functional')]
    for library, api in runs:
        out = tmp_path / f'{library}_{api}.jpg'
        out.write_bytes(b'an older drawing')
        _demo(image, CONFIGS[library], checkpoints[library], '--api', api, '--out-file', out,
              '--score-thr', '0')
        drawn = cv2.imread(str(out))
        assert drawn is not None and drawn.shape == (1, 1, 3), (library, api)
        assert 'drawing saved to' in capsys.readouterr().out
    expected = {'dot.png'} | {f'{library}_{api}.jpg' for library, api in runs}
    assert set(os.listdir(tmp_path)) == expected  # no temp files left


@pytest.mark.slow
@pytest.mark.parametrize('library', ['mmdet', 'mmseg'])
def test_inferencer_keeps_colours(tmp_path, checkpoints, library):
    """The inferencer API drew a BGR array as RGB: blue came out red."""
    image = _image(tmp_path / 'blue.png', 32, 32, bgr=(255, 0, 0))
    out = tmp_path / 'out.png'
    # nothing drawn over the image: no box passes 1.1, the mask is transparent
    _demo(image, CONFIGS[library], checkpoints[library], '--api', 'inferencer', '--out-file', out,
          '--score-thr', '1.1', '--opacity', '0')
    assert cv2.imread(str(out))[0, 0].tolist() == [255, 0, 0]


@pytest.mark.slow
@pytest.mark.parametrize('api', ['functional', 'inferencer'])
def test_checkpoint_of_another_model_is_refused(tmp_path, checkpoints, api):
    """The libraries load what fits and only log the rest; the demo refuses."""
    image = _image(tmp_path / 'in.png', 40, 56)
    with pytest.raises(SystemExit, match=r'Cannot use checkpoint: .* does not fit this MaskRCNN '
                                         r'model.*\n.*missing keys'):
        _demo(image, CONFIGS['mmdet'], checkpoints['mmseg'], '--api', api, '--out-file',
              tmp_path / 'out.png')
    assert not (tmp_path / 'out.png').exists()

"""painterly.videoio: reading any common clip, writing H.264 with the audio carried over, and
a clear one-line refusal for each kind of bad input, with nothing left where the output goes."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from clips import make_clip
from painterly import images as im
from painterly import videoio as vio
from painterly.videoio import VideoError


def frames(n: int = 4, size: tuple[int, int] = (64, 48)) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    small = [(rng.random((6, 8, 3)) * 255).astype(np.uint8) for _ in range(n)]
    return [Image.fromarray(a).resize(size, Image.Resampling.BICUBIC) for a in small]


def test_probe_and_read_a_clip(tmp_path):
    info = vio.probe(make_clip(tmp_path / "c.mp4", 5))
    assert (info.width, info.height, info.fps, info.frames, info.has_audio) == (64, 48, 25, 5, False)
    got = vio.read_frames(info.source, (32, 24))
    assert len(got) == 5 and all(f.size == (32, 24) and f.mode == "RGB" for f in got)
    assert len(vio.read_frames(info.source, (32, 24), max_frames=2)) == 2


def test_write_video_round_trip_keeps_rate_count_and_picture(tmp_path):
    src = frames(6)
    out = vio.write_video(src, tmp_path / "o.mp4", Fraction(30000, 1001))
    info = vio.probe(out)
    assert info.frames == 6 and info.fps == Fraction(30000, 1001) and (info.width, info.height) == (64, 48)
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
    back = vio.read_frames(out, (64, 48))

    def diff(a: Image.Image, b: Image.Image) -> float:
        return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())

    # Lossy (and 4:2:0 chroma on a 64x48 picture), but each frame in its place.
    assert all(diff(back[i], src[i]) < 0.3 * diff(back[i], src[(i + 1) % 6]) for i in range(6))
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]  # no temporary file left
    # A file the user asked for: the mode open() would give it, not the temporary name's 0600.
    assert out.stat().st_mode & 0o777 == im.file_mode()


def test_audio_survives_unchanged_and_is_cut_at_the_video_end(tmp_path):
    src = make_clip(tmp_path / "a.mp4", 10, audio=True)
    out = vio.write_video(frames(5), tmp_path / "o.mp4", Fraction(25), audio_from=src)
    assert vio.probe(out).has_audio
    with av.open(str(src)) as c:
        a_in = c.streams.audio[0]
        packets_in = [bytes(p) for p in c.demux(a_in) if p.size]
        rate_in = a_in.codec_context.sample_rate
    with av.open(str(out)) as c:
        a_out = c.streams.audio[0]
        assert a_out.codec_context.name == "aac" and a_out.codec_context.sample_rate == rate_in
        packets_out = [bytes(p) for p in c.demux(a_out) if p.size]
    assert packets_out and packets_out == packets_in[: len(packets_out)]  # copied, not re-encoded
    assert len(packets_out) < len(packets_in)  # cut: 5 frames of video keep 0.2 s of sound, not 0.48 s
    # AAC starts with one packet of encoder priming (negative time), hence the two-packet slack.
    assert len(packets_out) * 1024 / rate_in == pytest.approx(5 / 25, abs=2 * 1024 / rate_in + 1e-9)


def test_odd_sizes_are_written_even(tmp_path):
    out = vio.write_video(frames(2, (33, 25)), tmp_path / "o.mp4", Fraction(25))
    info = vio.probe(out)
    assert (info.width, info.height) == (32, 24)


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt"),
    [("yuv444.mp4", "libx264", "yuv444p"), ("ten_bit.mkv", "ffv1", "yuv420p10le"), ("alpha.mov", "png", "rgba")],
)
def test_odd_pixel_formats_are_read_as_rgb(tmp_path, name, codec, pix_fmt):
    path = make_clip(tmp_path / name, 3, codec=codec, pix_fmt=pix_fmt)
    info = vio.probe(path)
    assert info.pix_fmt == pix_fmt
    got = vio.read_frames(path, (64, 48))
    assert len(got) == 3 and got[0].mode == "RGB"
    assert np.asarray(got[0])[0, 0, 0] in range(10, 35)  # the first stripe's grey, 20


def test_a_folder_of_frames_in_and_out(tmp_path):
    folder = vio.write_frames_folder(frames(3), tmp_path / "f")
    assert sorted(p.name for p in folder.iterdir()) == ["000001.png", "000002.png", "000003.png"]
    info = vio.probe(folder)
    assert (info.frames, info.source, info.fps) == (3, None, vio.DEFAULT_FPS)
    assert len(vio.finished_frames(folder)) == 3
    (folder / "000002.png").unlink()
    assert len(vio.finished_frames(folder)) == 1  # up to the first missing one


# --- bad input ------------------------------------------------------------------------------


def test_not_a_video(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("these are my holiday notes, not a film\n" * 20)
    with pytest.raises(VideoError, match="not a video ffmpeg can read"):
        vio.probe(p)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        vio.probe(tmp_path / "nope.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="the file is empty"):
        vio.probe(tmp_path / "empty.mp4")


def add_silence(c: av.container.OutputContainer) -> None:
    """An AAC track of 1024 silent samples."""
    a = c.add_stream("aac", rate=48000)
    a.layout = "mono"
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
    frame.sample_rate, frame.pts = 48000, 0
    c.mux(a.encode(frame))
    c.mux(a.encode(None))


def test_no_video_stream(tmp_path):
    p = tmp_path / "sound.m4a"
    with av.open(str(p), "w") as c:
        add_silence(c)
    with pytest.raises(VideoError, match="no video stream"):
        vio.probe(p)


def test_a_corrupt_file(tmp_path):
    good = make_clip(tmp_path / "good.mp4", 20, size=(96, 64))
    data = bytearray(good.read_bytes())
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(bytes(data[: len(data) // 3]))  # the index (moov) is at the end: gone
    with pytest.raises(VideoError, match="cut.mp4: not a video ffmpeg can read"):
        vio.probe(cut)


def test_absurd_resolution_and_length(tmp_path, monkeypatch):
    path = make_clip(tmp_path / "c.mp4", 5)
    monkeypatch.setattr(vio, "MAX_INPUT_PIXELS", 1000)
    with pytest.raises(VideoError, match="megapixels, over the"):
        vio.probe(path)
    monkeypatch.undo()
    monkeypatch.setattr(vio, "MAX_FRAMES", 4)
    with pytest.raises(VideoError, match="5 frames .* over the limit of 4 frames"):
        vio.probe(path)


def test_variable_frame_rate_is_refused(tmp_path):
    path = make_clip(tmp_path / "vfr.mkv", 6, times_ms=[0, 40, 80, 200, 240, 400])
    with pytest.raises(VideoError, match="variable frame rate"):
        vio.read_frames(path, (64, 48))


def test_a_clip_with_no_frames(tmp_path):
    p = tmp_path / "zero.mkv"
    with av.open(str(p), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        add_silence(c)  # the stream exists, but no frame is ever written to it
    with pytest.raises(VideoError, match="no frames"):
        vio.probe(p)


def test_bad_outputs_are_refused_before_work(tmp_path):
    with pytest.raises(VideoError, match="unsupported output type '.gif'"):
        vio.check_output(tmp_path / "o.gif")
    with pytest.raises(VideoError, match="does not exist"):
        vio.check_output(tmp_path / "missing" / "o.mp4")
    assert vio.check_output(tmp_path / "frames_out") == tmp_path / "frames_out"


def test_a_failed_write_leaves_nothing(tmp_path):
    def broken():
        yield from frames(2)
        raise RuntimeError("the disk caught fire")

    with pytest.raises(RuntimeError, match="fire"):
        vio.write_video(broken(), tmp_path / "o.mp4", Fraction(25))
    assert list(tmp_path.iterdir()) == []

"""Safe outputs: exclusive unique temporaries, atomic renames, locks and checks up front."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fcnbase.cli import CliError, UsageError
from fcnbase.outputs import (
    OutputBusyError,
    OutputExistsError,
    atomic_write,
    check_outputs,
    check_writable,
    create_temp,
    is_partial,
    lock_dir,
    remove_leftovers,
    temp_path,
)


def test_atomic_write_renames_only_on_success(tmp_path: Path) -> None:
    final = tmp_path / "a.bin"
    final.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(final) as f:
        f.write(b"new, half")
        raise RuntimeError("crash")
    assert final.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.bin"]  # no temporary left behind
    with atomic_write(final) as f:
        f.write(b"new")
    assert final.read_bytes() == b"new"
    assert stat.S_IMODE(final.stat().st_mode) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_temporaries_are_unique_and_never_follow_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    final = tmp_path / "out" / "train.npz"
    final.parent.mkdir()
    # Plant symlinks at every name a fixed-name scheme would use.
    for name in (".train.npz.partial", "train.npz.tmp", ".train.npz.tmp"):
        (final.parent / name).symlink_to(victim)
    fds = [create_temp(final) for _ in range(3)]
    try:
        paths = {p for _, p in fds}
        assert len(paths) == 3 and all(is_partial(p.name) for p in paths)
        assert not any(p.is_symlink() for p in paths)
    finally:
        for fd, p in fds:
            os.close(fd)
            p.unlink()
    with atomic_write(final) as f:
        f.write(b"data")
    assert victim.read_text() == "precious"


def test_lock_refuses_a_second_run(tmp_path: Path) -> None:
    with (
        lock_dir(tmp_path / "out"),
        pytest.raises(OutputBusyError, match="another run"),
        lock_dir(tmp_path / "out"),
    ):
        pass
    with lock_dir(tmp_path / "out"):  # released
        pass
    assert os.listdir(tmp_path / "out") == []  # and no lock file


def test_check_outputs(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"jpeg")
    with pytest.raises(UsageError, match="also an input"):
        check_outputs([photo], inputs=[photo], force=True)
    link = tmp_path / "link.png"
    link.symlink_to(photo)
    with pytest.raises(UsageError, match="also an input"):
        check_outputs([link], inputs=[photo], force=True)
    with pytest.raises(UsageError, match="two different outputs"):
        check_outputs([tmp_path / "m.png", tmp_path / "." / "m.png"])
    with pytest.raises(OutputExistsError, match="--force"):
        check_outputs([photo])
    check_outputs([photo], force=True)
    check_outputs([tmp_path / "new" / "deeper" / "m.png"])
    assert not (tmp_path / "new").exists()  # checking creates nothing


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_check_writable_sees_a_read_only_directory(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(CliError, match="cannot"):
            check_writable(ro)
        with pytest.raises(CliError, match="not writable"):
            check_writable(ro / "sub")
    finally:
        ro.chmod(0o700)


def test_check_writable_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(CliError, match="not a directory"):
        check_writable(tmp_path / "f")
    with pytest.raises(CliError, match="not a directory"):
        check_writable(tmp_path / "f" / "sub")


def test_no_clobber_write_never_replaces_a_file_that_appeared(tmp_path: Path) -> None:
    final = tmp_path / "mask.png"
    with (
        pytest.raises(OutputExistsError, match="appeared"),
        atomic_write(final, replace=False) as f,
    ):
        f.write(b"ours")
        final.write_bytes(b"another run's")  # lands after the up-front checks
    assert final.read_bytes() == b"another run's"
    assert os.listdir(tmp_path) == ["mask.png"]
    final.unlink()
    with atomic_write(final, replace=False) as f:
        f.write(b"ours")
    assert final.read_bytes() == b"ours" and final.stat().st_nlink == 1


def test_leftovers_removed_are_those_of_that_name_only(tmp_path: Path) -> None:
    final = tmp_path / "fcn1s.pt"
    mine = [create_temp(final) for _ in range(2)]
    other_fd, other = create_temp(tmp_path / "fcn1s.png")
    for fd, _ in [*mine, (other_fd, other)]:
        os.close(fd)
    folder = temp_path(tmp_path / "images")  # a dead run's temporary folder, with its files
    folder.mkdir()
    (folder / "train-000000.png").write_bytes(b"half")
    (tmp_path / "fcn1s.pt.bak").write_text("the user's")
    assert remove_leftovers(final) == sorted(p for _, p in mine)
    assert remove_leftovers(tmp_path / "images") == [folder]
    assert sorted(tmp_path.iterdir()) == sorted([tmp_path / "fcn1s.pt.bak", other])

"""soar_env.files: the one atomic write and the one cache folder."""

import os
import threading
from pathlib import Path

import pytest

from soar_env import files
from soar_env.files import cache_dir, write_atomic, write_atomic_folder


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("data, expected", [
    ("ünïcode text\n", "ünïcode text\n".encode()),  # text is written as UTF-8, newlines as given
    (b"\x00\xffbytes", b"\x00\xffbytes"),
    (lambda tmp: tmp.write_bytes(b"by a function"), b"by a function"),
])
def test_writes_text_bytes_or_through_a_function(tmp_path, data, expected):
    target = tmp_path / "new" / "folder" / "file.json"  # missing folders are created
    write_atomic(target, data)
    assert target.read_bytes() == expected
    assert _listing(target.parent) == ["file.json"]


def test_replaces_an_existing_file_with_the_usual_mode(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")
    write_atomic(str(target), "new")  # a str path works too
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


def test_concurrent_writers_use_distinct_temporary_files(tmp_path):
    """Eight writers of one file are all inside their write at once: each has its own
    temporary file, the result is one writer's whole content, and no temporary file is left."""
    target = tmp_path / "shared.json"
    writers = 8
    barrier = threading.Barrier(writers, timeout=30)
    temps: list[Path] = []
    seen: list[int] = []
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        def write(tmp: Path) -> None:
            tmp.write_text(f"writer {i} " * 1000)
            temps.append(tmp)
            barrier.wait()  # every temporary file exists now, and none is renamed yet
            seen.append(len(list(tmp_path.glob(".shared.json.*.tmp"))))
            barrier.wait()  # then they are renamed, in any order

        try:
            write_atomic(target, write)
        except BaseException as err:  # reported below: a thread's exception is otherwise lost
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(set(temps)) == writers and seen == [writers] * writers
    assert all(t.parent == tmp_path and t.name.startswith(".shared.json.") and t.suffix == ".tmp"
               for t in temps)
    text = target.read_text()
    assert text in {f"writer {i} " * 1000 for i in range(writers)}
    assert _listing(tmp_path) == ["shared.json"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, error):
    target = tmp_path / "file.json"
    write_atomic(target, "old")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("half of the new")
        raise error

    with pytest.raises(type(error)):
        write_atomic(target, half_then_fail)
    assert target.read_text() == "old"
    assert _listing(tmp_path) == ["file.json"]


def test_a_failed_rename_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "file.json"
    target.write_text("old")

    def refuse(src, dst):
        raise PermissionError(f"cannot rename {src}")

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(PermissionError):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert _listing(tmp_path) == ["file.json"]


def _write_pair(text: str):
    def write(tmp: Path) -> None:
        (tmp / "config.json").write_text(text)
        (tmp / "model.safetensors").write_text(text)
    return write


def test_a_folder_is_written_whole_and_replaces_an_old_one_entirely(tmp_path):
    target = tmp_path / "promoted" / "round_3"  # missing folders are created
    write_atomic_folder(target, _write_pair("old"))
    (target / "stale.json").write_text("from an older save")
    write_atomic_folder(target, _write_pair("new"))
    assert _listing(target) == ["config.json", "model.safetensors"]  # nothing of the old folder
    assert (target / "config.json").read_text() == "new"
    assert _listing(target.parent) == ["round_3"]  # no temporary folder left


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_folder_write_keeps_the_old_folder_and_leaves_no_temporary_one(tmp_path, error):
    target = tmp_path / "round_3"
    write_atomic_folder(target, _write_pair("old"))

    def half_then_fail(tmp: Path) -> None:
        (tmp / "config.json").write_text("half of the new")
        raise error

    with pytest.raises(type(error)):
        write_atomic_folder(target, half_then_fail)
    with pytest.raises(type(error)):
        write_atomic_folder(tmp_path / "never", half_then_fail)
    assert (target / "config.json").read_text() == "old"
    assert _listing(tmp_path) == ["round_3"]


def test_a_failed_folder_rename_keeps_the_old_folder(tmp_path, monkeypatch):
    target = tmp_path / "round_3"
    write_atomic_folder(target, _write_pair("old"))
    rename, refused = os.replace, []

    def refuse_the_new_folder(src, dst):
        if Path(dst) == target and not refused:  # the new folder; putting the old one back works
            refused.append(src)
            raise PermissionError(f"cannot rename {src}")
        rename(src, dst)

    monkeypatch.setattr(files.os, "replace", refuse_the_new_folder)
    with pytest.raises(PermissionError):
        write_atomic_folder(target, _write_pair("new"))
    assert (target / "config.json").read_text() == "old"
    assert _listing(tmp_path) == ["round_3"]


def test_other_data_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(TypeError, match="expects str, bytes or a function"):
        write_atomic(tmp_path / "sub" / "file.json", {"not": "serialized"})
    assert _listing(tmp_path) == []


def test_cache_dir_is_soar_env_cache_or_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SOAR_ENV_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    assert not (tmp_path / "mine").exists()  # choosing the folder creates nothing
    monkeypatch.delenv("SOAR_ENV_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "soar_env"


def test_every_user_of_the_cache_folder_asks_cache_dir(tmp_path, monkeypatch):
    """The hard-set cache and the hub dataset copies follow the same SOAR_ENV_CACHE."""
    from soar_env.domains.math import load_problems
    from soar_env.hardset import default_cache_dir

    monkeypatch.setenv("SOAR_ENV_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    cached = tmp_path / "datasets" / "someone__a-dataset__default__test.jsonl"
    cached.parent.mkdir()
    cached.write_text('{"problem": "1+1?", "answer": "2"}\n')
    assert [p.answer for p in load_problems("someone/a-dataset")] == ["2"]  # read from the cache


# ---- a write the system refuses: one error that names the file, nothing left of it ----------
# (a real full filesystem: tests/test_runlock.py)
def _to_a_full_disk(tmp: Path) -> None:
    import errno

    tmp.write_text("the first part")  # then write(2) fails as on a full disk
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _as_safetensors_fails(tmp: Path) -> None:
    from safetensors import SafetensorError

    tmp.write_bytes(bytes(100))
    raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")


@pytest.mark.parametrize("fail", [_to_a_full_disk, _as_safetensors_fails])
def test_a_refused_write_is_a_write_error_that_names_the_file(tmp_path, fail):
    import errno

    target = tmp_path / "checkpoints" / "round_2.safetensors"
    with pytest.raises(files.WriteError) as caught:
        write_atomic(target, fail)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert isinstance(caught.value, OSError) and "No space left on device" in str(caught.value)
    assert _listing(target.parent) == []  # nothing under the file's name, nor a temporary one
    folder = tmp_path / "promoted" / "round_0"
    write_atomic_folder(folder, _write_pair("old"))

    def save_pretrained(tmp: Path) -> None:
        (tmp / "config.json").write_text("new")
        fail(tmp / "model.safetensors")

    with pytest.raises(files.WriteError) as caught:
        write_atomic_folder(folder, save_pretrained)
    assert caught.value.filename == str(folder)
    assert (folder / "config.json").read_text() == "old" and _listing(folder.parent) == ["round_0"]


def test_errors_that_are_not_the_systems_pass_unchanged(tmp_path):
    def broken(tmp: Path) -> None:
        raise TypeError("a bug, not a disk")

    with pytest.raises(TypeError, match="a bug"):
        write_atomic(tmp_path / "file", broken)
    assert files.os_errno(OSError(13, "Permission denied")) == 13
    assert files.os_errno(ValueError("no number here")) is None
    assert _listing(tmp_path) == []

"""One-off data work shared between processes: each does its share, all get every result.

A team here is real processes exchanging bytes through a manager, in place of the engine's JAX
collective. They are forks of multiprocessing's fork server, a fresh interpreter that has only
imported the libraries (`PRELOAD`): TensorFlow starts in each member as in a fresh process,
without each member importing it again.
"""

import json
import multiprocessing
from pathlib import Path

import numpy as np
from PIL import Image

from dlkeras.data import image_files, shares

PRELOAD = ["numpy", "PIL.Image", "tensorflow", "keras", "keras_hub", "dlkeras.data.image_files",
           "dlkeras.data.tokenize"]


def run_team(function, *args, processes: int = 2) -> list:
    """function(index, *args) in `processes` processes that form one team."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    with context.Manager() as manager:
        board, barrier, results = manager.dict(), manager.Barrier(processes), manager.dict()
        members = [context.Process(target=member, args=(function, index, processes, board,
                                                        barrier, results, args))
                   for index in range(processes)]
        for process in members:
            process.start()
        for process in members:
            process.join(180)
        assert all(process.exitcode == 0 for process in members), "a team member failed"
        return [results[index] for index in range(processes)]


def member(function, index, processes, board, barrier, results, args):
    rounds = [0]

    def exchange(local: bytes) -> list[bytes]:
        board[(rounds[0], index)] = local
        barrier.wait(120)
        every = [board[(rounds[0], other)] for other in range(processes)]
        rounds[0] += 1
        return every

    shares.set_team(index, processes, exchange)
    results[index] = function(index, *args)


def lengths_and_words(index, items):
    seen = []

    def work(share):
        seen.append(len(share))
        return [word.upper() for word in share]

    arrays = shares.share(lambda share: {"twice": np.array([len(w) * 2 for w in share], np.int64),
                                         "rows": np.ones((len(share), 3), np.float32) * index},
                          items, "arrays")
    return seen, shares.share(work, items, "words"), {k: v.tolist() for k, v in arrays.items()}


def test_each_process_does_its_share_and_gets_every_result_in_order():
    items = ["a", "bb", "ccc", "dddd", "eeeee"]
    first, second = run_team(lengths_and_words, items)
    assert first[0] == [2] and second[0] == [3]  # contiguous shares: 2 and 3 of 5
    assert first[1] == second[1] == ["A", "BB", "CCC", "DDDD", "EEEEE"]
    assert first[2]["twice"] == second[2]["twice"] == [2, 4, 6, 8, 10]
    # the rows of each share came from the process that computed them
    assert first[2]["rows"] == second[2]["rows"] == [[0.0] * 3] * 2 + [[1.0] * 3] * 3


def test_a_process_with_an_empty_share_still_gets_every_result():
    first, second = run_team(lengths_and_words, ["only"])
    assert first[0] == [0] and second[0] == [1]
    assert first[1] == second[1] == ["ONLY"]
    assert first[2]["twice"] == second[2]["twice"] == [8]


def test_one_process_calls_the_function_once_on_everything():
    calls = []
    assert shares.share(lambda share: calls.append(list(share)) or share, [1, 2, 3], "x") == [1, 2, 3]
    assert calls == [[1, 2, 3]]


def write_folder(root: Path) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    paths = []
    for name in ("dent", "ok"):
        (root / name).mkdir(parents=True)
        for number in range(4):
            path = root / name / f"{number}.png"
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
            paths.append(path)
    Image.fromarray(np.full((8, 8), 90, np.uint8), mode="L").save(root / "ok" / "gray.png")
    Image.fromarray(np.full((8, 8, 3), 30, np.uint8)).save(root / "ok" / "scan.tiff")
    (root / "dent" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(200)))
    paths += [root / "ok" / "gray.png", root / "ok" / "scan.tiff", root / "dent" / "corrupt.jpg"]
    return np.array([str(p) for p in paths]), np.array([p.parent.name for p in paths])


def counted_scan(index, paths, labels, converted_dir):
    checked = []
    check = image_files.check_image

    def counting(path, folder):
        checked.append(str(path))
        return check(path, folder)

    image_files.check_image = counting
    usable, kept, skipped, converted = image_files.scan(paths, labels, Path(converted_dir))
    return checked, usable.tolist(), kept.tolist(), skipped, converted


def test_image_files_are_checked_once_across_processes_with_one_process_results(tmp_path):
    paths, labels = write_folder(tmp_path / "parts")
    alone = counted_scan(0, paths, labels, tmp_path / "alone")
    team = run_team(counted_scan, paths, labels, str(tmp_path / "team"))
    assert sorted(team[0][0] + team[1][0]) == sorted(alone[0]) == sorted(paths.tolist())
    for checked, usable, kept, skipped, converted in team:
        assert (kept, skipped, converted) == alone[2:]
        assert converted == {"rgb": 1, "copies": 1} and len(skipped) == 1
        assert [Path(p).name for p in usable] == [Path(p).name for p in alone[1]]
        assert all(Path(p).is_file() for p in usable)


def test_a_converted_copy_missing_on_this_host_is_made_here(tmp_path):
    """Another host converted the TIFF into its own cache: this host makes its own copy."""
    tiff = tmp_path / "scan.tiff"
    Image.fromarray(np.full((8, 8, 3), 30, np.uint8)).save(tiff)
    other_host = [[str(tmp_path / "elsewhere" / "copy.png"), "", "copy"]]

    def exchange(local: bytes) -> list[bytes]:  # process 0 of 2; process 1 checked the TIFF
        return [local, b"J" + json.dumps(other_host).encode()]

    shares.set_team(0, 2, exchange)
    try:
        usable, _, skipped, converted = image_files.scan(np.array([str(tiff)]), np.array(["x"]),
                                                         tmp_path / "here")
    finally:
        shares.set_team(0, 1, None)
    assert not skipped and converted == {"rgb": 0, "copies": 1}
    assert Path(usable[0]).parent == tmp_path / "here" and Path(usable[0]).is_file()


def packed_texts(index, texts):
    from dlkeras.data import tokenize

    tokenizer = tokenize.load_tokenizer("tiny_bert_random")
    counts = shares.share(lambda share: tokenize.token_counts(tokenizer, share), texts, "counts")
    packed = shares.share(lambda share: tokenize.pack_texts(tokenizer, 16, share), texts, "pack")
    return counts.tolist(), {name: value.tolist() for name, value in packed.items()}


def test_texts_are_tokenized_once_across_processes_with_one_process_results():
    count = 7
    texts = [f"ticket number {n} " + "late flight " * n for n in range(count)]
    alone = packed_texts(0, texts)
    team = run_team(packed_texts, texts)
    assert team[0] == team[1] == alone
    assert alone[0] == sorted(alone[0]) and len(alone[1]["token_ids"]) == count

#!/usr/bin/env python3
"""autosave beside restic, borg and git on the generated project dataset, with the machine's
limits measured in the same run (issue 8).

Usage:
  python3 benches/compare.py [--scale 0.25 [1.0 ...]] [--tools autosave,restic,borg,git]
                             [--out results.json] [--drop-caches] [--keep]

For each scale (default 0.25, about 260 MiB; several scales run one after the other, which shows
how peak memory grows with the dataset) the dataset of shared/bench/gen_dataset.py is generated
once under target/bench-data/ (shared with benches/snapshot.rs). Then, for each tool in turn:

  1. a fresh copy of the dataset (cp -a) and an empty repository outside it (init not timed);
  2. first snapshot; 3. no-change snapshot, nine times (the median counts: each run takes
     milliseconds, and one run shows the machine's noise more than the tool);
  4. shared/bench/mutate_dataset.py --fraction 0.01 --seed 7 --round 1 on the copy (the same
     changes for every tool; the program checks that the mutated trees are equal), then 2.1 s
     of waiting so that no tool re-reads files only because they are racily new;
  5. snapshot after the mutation; 6. full restore of the latest snapshot into an empty
     directory, checked file by file (SHA-256) against the mutated tree. autosave restores
     twice: as it does by default (every file fsynced before the restore returns) and with
     --no-sync, the durability the peers' restores have (none of them fsyncs).

Every step is timed as whole processes (wall clock, spawn included), with the peak RSS of its
processes (ru_maxrss from wait4) and the repository's growth (apparent bytes of its files).
The page cache is warm (the copy was just written) unless --drop-caches, which needs root and
empties the cache before each timed step: it slows every process on the machine. Before each
timed step the dirty pages of the setup are written back (sync), and nothing is deleted until
the run ends (on ext4 without a journal, files created just after many were deleted cost a scan
of the recently freed inodes each), so one tool's leftovers never slow the next.

Commands per tool (a tool that is not installed is skipped, and the output says so):
  autosave  autosave --store REPO --json snapshot SRC; autosave --store REPO restore latest
            --target DEST (the release build of this worktree, built by this program)
  restic    restic init --repository-version 2; restic backup . (in SRC; compression auto,
            restic always encrypts); restic restore latest --target DEST
  borg      borg init -e none; borg create --compression zstd,3 REPO::sN . (in SRC; the level
            autosave uses; borg's default would be lz4); borg extract REPO::s3 (in DEST)
  git       git init; git add -A && git commit -q --allow-empty (--allow-empty so that the
            no-change step records a commit, as the other tools record a snapshot);
            git checkout HEAD -- . with a new index and DEST as the work tree

The machine's limits come from benches/limits.rs (built with the release profile) on the same
dataset: parallel XXH3-128, zstd at the store's level, sequential write+fsync, and the time to
lstat every entry (one thread and all cores), every file of the dataset written durably from
memory as a durable restore writes them (eight threads, temp file, writeback started and clean
pages dropped as written, fsync, rename); beside them, the time to start a process (`true`,
timed as the tools are). A no-change snapshot's floor is that start plus the parallel lstat walk:
any tool that notices in-place edits, including those made through mmap, must stat every file.

Targets (issue 8), checked at the end of each scale's table:
  no-change and 1 %-change snapshot >= 5x faster than the fastest peer;
  first snapshot no slower than the fastest peer, with a repository no larger than that peer's;
  restore >= 2x faster than the fastest peer;
  repository size after the mutation within 10 % of the smallest peer's.
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_BENCH = os.path.join(os.path.dirname(ROOT), "shared", "bench")
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
DATA = os.path.join(ROOT, "target", "bench-data")
TOOLS = ["autosave", "restic", "borg", "git"]
STEPS = ["first", "nochange", "change", "restore"]
STEP_NAMES = {
    "first": "first snapshot",
    "nochange": "no-change snapshot",
    "change": "1 % change snapshot",
    "restore": "full restore",
    "restore_nosync": "full restore, --no-sync",
}
MIB = float(1 << 20)
MUTATION = ["--fraction", "0.01", "--seed", "7", "--round", "1"]
RACY_WAIT_S = 2.1
# The no-change snapshot is timed this many times (the median counts).
NOCHANGE_RUNS = 9
# A process exec'd from this script starts its ru_maxrss at this script's RSS (Linux records the
# forked copy's high-water mark at exec); GNU time's child starts from time's own ~1 MiB instead.
GNU_TIME = shutil.which("time", path="/usr/bin:/bin") if sys.platform.startswith("linux") else None


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def fail(message):
    log(f"error: {message}")
    sys.exit(1)


# ---------------------------------------------------------------- processes and measurements


def run(cmd, log_path, cwd=None, env=None):
    """Runs one process to its end: (seconds, peak RSS in KiB, stdout text). Its stdout goes to
    `log_path`, its stderr to `log_path`.err."""
    rss_path = log_path + ".rss"
    argv = [GNU_TIME, "-f", "%M", "-o", rss_path, *cmd] if GNU_TIME else cmd
    with open(log_path, "w") as stdout, open(log_path + ".err", "w") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        fail(f"{' '.join(cmd)} exited with {proc.returncode}\n{open(log_path + '.err').read()[-2000:]}")
    rss = int(open(rss_path).read().split()[-1]) if GNU_TIME else usage.ru_maxrss
    with open(log_path) as f:
        return seconds, rss, f.read()


def remove_run_logs(log_path):
    """Removes the files `run` wrote for `log_path`."""
    for suffix in ("", ".err", ".rss"):
        if os.path.exists(log_path + suffix):
            os.remove(log_path + suffix)


def rss_method():
    """How peak RSS is measured, and the smallest figure the method can give (`true`'s)."""
    probe = os.path.join(DATA, "rss-probe.out")
    _, floor, _ = run(["true"], probe)
    remove_run_logs(probe)
    how = "GNU time %M (the tool's own ru_maxrss)" if GNU_TIME else \
        "wait4 ru_maxrss (includes this script's RSS at spawn: a fork inherits it)"
    return {"method": how, "floor_kib": floor}


def run_step(cmds, cwd, env, log_path, drop_caches):
    """Runs the commands of one step in sequence; times add up, peak RSS is the largest."""
    # The setup's dirty pages (the dataset copy, the mutation) are written back first, so the
    # step's own fsyncs do not wait for them.
    subprocess.run(["sync"], check=True)
    if drop_caches:
        drop_page_cache()
    total, peak, text = 0.0, 0, ""
    for cmd in cmds:
        seconds, rss, text = run(cmd, log_path, cwd=cwd, env=env)
        total += seconds
        peak = max(peak, rss)
    return total, peak, text


def drop_page_cache():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def dir_size(path):
    """(apparent bytes, allocated bytes) of the files under `path`."""
    apparent = allocated = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated


def tree_digests(root, skip=(".autosave", ".git")):
    """{relative path: SHA-256 of a file, or the target of a symlink} under `root`."""
    paths = []
    for dirpath, dirnames, names in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]
        paths.extend(os.path.join(dirpath, n) for n in names)

    def digest(path):
        rel = os.path.relpath(path, root)
        if os.path.islink(path):
            return rel, "link:" + os.readlink(path)
        with open(path, "rb") as f:
            return rel, hashlib.file_digest(f, "sha256").hexdigest()

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        return dict(pool.map(digest, paths))


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


# Directories to delete when the whole run is over. On ext4 without a journal (this machine's
# disk), an inode freed less than a minute ago is skipped when a new one is allocated, at the
# cost of reading its inode table entry: creating a thousand files right after deleting a
# thousand spends most of its CPU on that scan. Deleting nothing until the end keeps one tool's
# (or one step's) leftovers from slowing the next.
LATER = []


def delete_later(path):
    LATER.append(path)


def delete_leftovers():
    for path in LATER:
        shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- the tools


class Tool:
    """One tool's repository and commands. `home` holds its caches and logs."""

    name = ""

    def __init__(self, base):
        self.home = fresh_dir(os.path.join(base, "home"))
        self.repo = os.path.join(base, "repo")
        self.env = dict(os.environ)

    def available(self):
        return shutil.which(self.name) is not None

    def version(self):
        return subprocess.run([self.name, "--version"], capture_output=True, text=True).stdout.strip()

    def log(self, step):
        return os.path.join(self.home, f"{step}.out")

    def init(self, src):
        pass

    def snapshot_cmds(self, src, n):
        raise NotImplementedError

    def restore_cmds(self, dest):
        raise NotImplementedError



class Autosave(Tool):
    name = "autosave"
    binary = os.path.join(TARGET, "release", "autosave")

    def available(self):
        return os.path.exists(self.binary)

    def version(self):
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout
        return f"{out.strip()} (release build of {rev})"

    def init(self, src):
        run([self.binary, "--store", self.repo, "-q", "init"], self.log("init"), env=self.env)

    def snapshot_cmds(self, src, n):
        return [[self.binary, "--store", self.repo, "--json", "snapshot", src]]

    def restore_cmds(self, dest):
        return [[self.binary, "--store", self.repo, "-q", "restore", "latest", "--target", dest]]

    def restore_nosync_cmds(self, dest):
        """Without fsync, as the peers restore: the same work under the same durability."""
        return [self.restore_cmds(dest)[0] + ["--no-sync"]]


class Restic(Tool):
    name = "restic"

    def __init__(self, base):
        super().__init__(base)
        self.env.update(RESTIC_REPOSITORY=self.repo, RESTIC_PASSWORD="compare",
                        RESTIC_CACHE_DIR=os.path.join(self.home, "cache"))

    def version(self):
        return subprocess.run(["restic", "version"], capture_output=True, text=True).stdout.strip()

    def init(self, src):
        run(["restic", "init", "--repository-version", "2"], self.log("init"), env=self.env)

    def snapshot_cmds(self, src, n):
        return [["restic", "backup", "--quiet", "--host", "compare", "."]]

    def restore_cmds(self, dest):
        return [["restic", "restore", "latest", "--target", dest]]


class Borg(Tool):
    name = "borg"

    def __init__(self, base):
        super().__init__(base)
        self.env.update(BORG_BASE_DIR=self.home, BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
                        BORG_RELOCATED_REPO_ACCESS_IS_OK="yes")
        self.last = None

    def init(self, src):
        run(["borg", "init", "-e", "none", self.repo], self.log("init"), env=self.env)

    def snapshot_cmds(self, src, n):
        self.last = f"{self.repo}::s{n}"
        return [["borg", "create", "--compression", "zstd,3", self.last, "."]]

    def restore_cmds(self, dest):
        return [["borg", "extract", self.last]]


class Git(Tool):
    name = "git"

    def __init__(self, base):
        super().__init__(base)
        self.env.update(GIT_DIR=self.repo, GIT_AUTHOR_NAME="compare", GIT_AUTHOR_EMAIL="c@example.invalid",
                        GIT_COMMITTER_NAME="compare", GIT_COMMITTER_EMAIL="c@example.invalid",
                        GIT_CONFIG_NOSYSTEM="1", HOME=self.home)

    def init(self, src):
        self.env["GIT_WORK_TREE"] = src
        run(["git", "init", "-q"], self.log("init"), env=self.env)

    def snapshot_cmds(self, src, n):
        return [["git", "add", "-A"], ["git", "commit", "-q", "--allow-empty", "-m", f"s{n}"]]

    def restore_cmds(self, dest):
        self.env.update(GIT_WORK_TREE=dest, GIT_INDEX_FILE=os.path.join(self.home, "restore-index"))
        return [["git", "checkout", "HEAD", "--", "."]]


TOOL_CLASSES = {"autosave": Autosave, "restic": Restic, "borg": Borg, "git": Git}


# ---------------------------------------------------------------- building and data


def cargo(args):
    log(f"$ cargo {' '.join(args)}")
    return subprocess.run(["cargo", *args], cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout


def dataset(scale):
    base = os.path.join(DATA, f"dataset-{scale}")
    if not os.path.exists(os.path.join(base, ".complete")):
        shutil.rmtree(base, ignore_errors=True)
        log(f"generating the dataset at scale {scale} ...")
        subprocess.run([sys.executable, os.path.join(SHARED_BENCH, "gen_dataset.py"), base,
                        "--scale", str(scale)], check=True, stdout=subprocess.DEVNULL)
        open(os.path.join(base, ".complete"), "w").close()
    return base


def fresh_copy(src, dest):
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run(["cp", "-a", src, dest], check=True)
    os.remove(os.path.join(dest, ".complete"))


def mutate(src):
    out = subprocess.run([sys.executable, os.path.join(SHARED_BENCH, "mutate_dataset.py"), src,
                          *MUTATION], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def limits_binary():
    """Builds benches/limits.rs with the release profile (the CLI's dependencies, already built)."""
    out = cargo(["build", "--release", "--bench", "limits", "--message-format=json"])
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "limits":
            return msg["executable"]
    fail("cargo did not report the limits benchmark's executable")


def measure_limits(binary, data, scratch):
    out = subprocess.run([binary, "--data", data, "--scratch", scratch, "--keep-written"],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    limits = json.loads(out)
    # Removed with the rest at the end: removing them now would slow the first tool's files.
    for tree in limits["write_files_fsync"].pop("written_trees", []):
        delete_later(tree)
    limits["spawn_s"] = spawn_seconds(scratch)
    return limits


def spawn_seconds(scratch, runs=15):
    """Median seconds to start and wait for `true`, timed as every tool's step is (`run`)."""
    probe = os.path.join(scratch, "spawn-probe.out")
    times = sorted(run(["true"], probe)[0] for _ in range(runs))
    remove_run_logs(probe)
    return times[runs // 2]


# ---------------------------------------------------------------- one tool, one scale


def bench_tool(tool, pristine, base, drop_caches, reference):
    """The four steps of one tool. `reference` holds the mutated tree's digests once known."""
    src = os.path.join(base, "src")
    fresh_copy(pristine, src)
    tool.init(src)
    steps, size = {}, dir_size(tool.repo)
    for n, step in enumerate(["first", "nochange", "change"], start=1):
        if step == "change":
            mutation = mutate(src)
            digests = tree_digests(src)
            if reference.setdefault("digests", digests) != digests:
                fail(f"{tool.name}: the mutation did not give the same tree as for the first tool")
            reference.setdefault("mutation", mutation)
            time.sleep(RACY_WAIT_S)
        seconds, rss, text = run_step(tool.snapshot_cmds(src, n), src, tool.env, tool.log(step),
                                      drop_caches)
        new_size = dir_size(tool.repo)
        steps[step] = step_record(seconds, rss, size, new_size, text if tool.name == "autosave" else "")
        size = new_size
        if step == "nochange":
            # One run of a few milliseconds says more about the machine's mood than about the
            # tool: the step is repeated and its time is the median. Growth and RSS stay the
            # first run's (the largest RSS of all runs is kept).
            times = [seconds]
            for k in range(1, NOCHANGE_RUNS):
                again, rss, _ = run_step(tool.snapshot_cmds(src, f"{n}.{k}"), src, tool.env,
                                         tool.log(step), drop_caches)
                times.append(again)
                steps[step]["peak_rss_kib"] = max(steps[step]["peak_rss_kib"], rss)
            steps[step]["runs_seconds"] = times
            steps[step]["seconds"] = seconds = statistics.median(times)
            size = dir_size(tool.repo)
        log(f"  {tool.name} {STEP_NAMES[step]}: {seconds:.3f} s")
    steps["restore"] = restore(tool, base, drop_caches, reference["digests"], tool.restore_cmds)
    log(f"  {tool.name} full restore: {steps['restore']['seconds']:.2f} s, verified")
    if hasattr(tool, "restore_nosync_cmds"):
        steps["restore_nosync"] = restore(tool, base, drop_caches, reference["digests"],
                                          tool.restore_nosync_cmds)
        log(f"  {tool.name} full restore, --no-sync: {steps['restore_nosync']['seconds']:.2f} s, "
            "verified")
    delete_later(src)
    return steps


def step_record(seconds, rss, before, after, json_text):
    record = {"seconds": seconds, "peak_rss_kib": rss, "growth_bytes": after[0] - before[0],
              "growth_allocated_bytes": after[1] - before[1], "repo_bytes": after[0],
              "repo_allocated_bytes": after[1]}
    if json_text:
        doc = json.loads(json_text)
        record["autosave"] = {k: doc.get(k) for k in
                              ("entries", "skipped_stat", "hashed", "bytes_hashed", "new_blobs",
                               "bytes_written", "duration_ns")}
    return record


def restore(tool, base, drop_caches, expected, cmds):
    dest = fresh_dir(os.path.join(base, f"restore-{cmds.__name__}"))
    # Every tool runs in the empty target (borg extracts into its working directory).
    seconds, rss, _ = run_step(cmds(dest), dest, tool.env, tool.log("restore"), drop_caches)
    got = tree_digests(dest)
    if got != expected:
        missing = sorted(set(expected) - set(got))[:5]
        extra = sorted(set(got) - set(expected))[:5]
        wrong = sorted(p for p in expected if p in got and got[p] != expected[p])[:5]
        fail(f"{tool.name}: restored tree differs (missing {missing}, extra {extra}, wrong {wrong})")
    delete_later(dest)
    return {"seconds": seconds, "peak_rss_kib": rss, "files": len(got), "verified": True}


def bench_scale(scale, tools, args):
    pristine = dataset(scale)
    work = fresh_dir(os.path.join(DATA, f"compare-{scale}"))
    files = sum(len(names) for _, _, names in os.walk(pristine)) - 1  # less .complete
    dataset_bytes = dir_size(pristine)[0]
    log(f"scale {scale}: {files} files, {dataset_bytes / MIB:.0f} MiB; measuring limits ...")
    limits = measure_limits(args.limits_binary, pristine, work)
    result = {"scale": scale, "dataset_bytes": dataset_bytes, "files": files,
              "limits": limits, "tools": {}}
    reference = {}
    for name in tools:
        tool = TOOL_CLASSES[name](os.path.join(work, name))
        if not tool.available():
            result["tools"][name] = {"status": "skipped: not installed"}
            log(f"  {name}: skipped, not installed")
            continue
        log(f"  {name} ({tool.version().splitlines()[0]}) ...")
        steps = bench_tool(tool, pristine, os.path.join(work, name), args.drop_caches, reference)
        result["tools"][name] = {"status": "ran", "version": tool.version(), "steps": steps}
        if not args.keep:
            delete_later(os.path.join(work, name))
    result["mutation"] = reference.get("mutation")
    if not args.keep:
        delete_later(work)
    return result


# ---------------------------------------------------------------- the report


def peers_that_ran(result):
    return {n: t["steps"] for n, t in result["tools"].items() if n != "autosave" and t["status"] == "ran"}


def fastest_peer(result, step):
    peers = peers_that_ran(result)
    if not peers:
        return None, None
    name = min(peers, key=lambda n: peers[n][step]["seconds"])
    return name, peers[name][step]["seconds"]


def limit_seconds(result, step):
    """The time the machine's limits allow autosave for a step (perfect overlap of its stages)."""
    lim = result["limits"]
    steps = result["tools"]["autosave"]["steps"]
    total = result["dataset_bytes"]
    zstd_c, zstd_d = lim["zstd"]["compress"], lim["zstd"]["decompress"]
    write = lim["write_fsync"]["rate"]
    xxh3 = max(lim["xxh3_128"]["parallel"], lim["xxh3_128_dispatched"]["parallel"])
    if step == "first":
        return max(total / xxh3, total / zstd_c, steps["first"]["growth_bytes"] / write), \
            "max(hash, compress all, write the growth)"
    if step == "nochange":
        # Any tool that notices in-place edits (an edit through mmap shows only in a file's
        # stat) must start and lstat every entry: the floor of a no-change snapshot.
        return lim["spawn_s"] + lim["stat_walk"]["parallel_s"], \
            "start a process + lstat every entry on all cores"
    if step == "change":
        changed = result["mutation"]["bytes_changed"]
        return max(changed / zstd_c, steps["change"]["growth_bytes"] / write), \
            "max(compress the change, write the growth)"
    if step == "restore_nosync":
        return max(total / zstd_d, total / xxh3), "max(decompress, verify)"
    files = lim["write_files_fsync"]
    return max(total / zstd_d, files["bytes"] / files["rate"], total / xxh3), \
        "max(decompress, verify, write every file durably from memory)"


def table(result):
    lines = [f"| tool | step | time | vs fastest peer | repo growth | repo size | peak RSS | of limit |",
             "|---|---|---|---|---|---|---|---|"]
    for name, tool in result["tools"].items():
        if tool["status"] != "ran":
            lines.append(f"| {name} | {tool['status']} | | | | | | |")
            continue
        for step in STEPS + ["restore_nosync"]:
            if step in tool["steps"]:
                lines.append(row(result, name, step, tool["steps"][step]))
    return "\n".join(lines)


def row(result, name, step, s):
    _, peer_t = fastest_peer(result, "restore" if step == "restore_nosync" else step)
    vs_peer = f"{s['seconds'] / peer_t:.2f}" if peer_t else "n/a"
    growth = f"{s['growth_bytes'] / MIB:.1f} MiB" if "growth_bytes" in s else ""
    size = f"{s['repo_bytes'] / MIB:.1f} MiB" if "repo_bytes" in s else ""
    of_limit = ""
    if name == "autosave":
        lim_t, _ = limit_seconds(result, step)
        of_limit = f"{lim_t / s['seconds']:.2f}"
    return (f"| {name} | {STEP_NAMES[step]} | {s['seconds'] * 1e3:.0f} ms | {vs_peer} | {growth} | "
            f"{size} | {s['peak_rss_kib'] / 1024:.0f} MiB | {of_limit} |")


def targets(result):
    """One (name, met, text) per target of issue 8; met is None when it cannot be checked."""
    if result["tools"].get("autosave", {}).get("status") != "ran":
        return []
    ours = result["tools"]["autosave"]["steps"]
    peers = peers_that_ran(result)
    if not peers:
        return [("all targets", None, "not checked: no peer ran")]
    out = []
    for step, factor in [("nochange", 5), ("change", 5), ("restore", 2), ("restore_nosync", 2)]:
        if step not in ours:
            continue
        peer, t = fastest_peer(result, "restore" if step == "restore_nosync" else step)
        speedup = t / ours[step]["seconds"]
        text = f"{speedup:.2f}x ({ours[step]['seconds'] * 1e3:.0f} ms vs {peer} {t * 1e3:.0f} ms)"
        if step == "nochange":
            floor, _ = limit_seconds(result, step)
            text += (f"; the machine's floor ({floor * 1e3:.1f} ms: start a process, lstat every "
                     f"entry) allows at most {t / floor:.2f}x")
        if step == "restore":
            files = result["limits"]["write_files_fsync"]
            floor = files["bytes"] / files["rate"]
            text += (f"; writing the same files durably from memory took {floor * 1e3:.0f} ms "
                     f"in this run, which allows at most {t / floor:.2f}x")
        out.append((f"{STEP_NAMES[step]} >= {factor}x faster than the fastest peer", speedup >= factor,
                    text))
    peer, t = fastest_peer(result, "first")
    ours_first, theirs = ours["first"], peers[peer]["first"]
    met = ours_first["seconds"] <= t and ours_first["repo_bytes"] <= theirs["repo_bytes"]
    out.append(("first snapshot no slower than the fastest peer, repository no larger", met,
                f"{ours_first['seconds'] * 1e3:.0f} ms, {ours_first['repo_bytes'] / MIB:.1f} MiB vs "
                f"{peer} {t * 1e3:.0f} ms, {theirs['repo_bytes'] / MIB:.1f} MiB"))
    smallest = min(peers, key=lambda n: peers[n]["change"]["repo_bytes"])
    ratio = ours["change"]["repo_bytes"] / peers[smallest]["change"]["repo_bytes"]
    out.append(("repository after the mutation within 10 % of the smallest peer's", ratio <= 1.10,
                f"{ratio:.3f}x ({ours['change']['repo_bytes'] / MIB:.1f} MiB vs {smallest} "
                f"{peers[smallest]['change']['repo_bytes'] / MIB:.1f} MiB)"))
    return out


def limits_line(lim):
    x, d = lim["xxh3_128"], lim["xxh3_128_dispatched"]
    return (f"limits (same run, {lim['bytes'] / MIB:.0f} MiB of the dataset, {lim['threads']} threads): "
            f"XXH3-128 as built ({lim['xxh3_simd_compiled']}) {x['parallel'] / MIB:.0f} MiB/s parallel, "
            f"{x['one_core'] / MIB:.0f} one core; runtime-dispatched (AVX2 detected: {lim['avx2_detected']}) "
            f"{d['parallel'] / MIB:.0f} / {d['one_core'] / MIB:.0f} MiB/s; zstd-{lim['zstd_level']} "
            f"compress {lim['zstd']['compress'] / MIB:.0f} MiB/s, decompress "
            f"{lim['zstd']['decompress'] / MIB:.0f} MiB/s (ratio {lim['zstd']['ratio']:.2f}); "
            f"with the store's window {lim['zstd_store_window']['compress'] / MIB:.0f} / "
            f"{lim['zstd_store_window']['decompress'] / MIB:.0f} MiB/s "
            f"(ratio {lim['zstd_store_window']['ratio']:.2f}); write+fsync {lim['write_fsync']['rate'] / MIB:.0f} MiB/s; "
            f"start a process {lim['spawn_s'] * 1e3:.1f} ms; lstat all {lim['stat_walk']['entries']} entries "
            f"{lim['stat_walk']['one_thread_s'] * 1e3:.1f} ms on one thread, "
            f"{lim['stat_walk']['parallel_s'] * 1e3:.1f} ms on all cores; all {lim['write_files_fsync']['files']} "
            f"files written durably as a restore writes them {lim['write_files_fsync']['rate'] / MIB:.0f} MiB/s")


def report(result):
    print(f"\n### scale {result['scale']}: {result['files']} files, {result['dataset_bytes'] / MIB:.0f} MiB\n")
    print(limits_line(result["limits"]))
    if result.get("mutation"):
        m = result["mutation"]
        print(f"mutation: {m.get('bytes_changed', 0) / MIB:.1f} MiB changed "
              f"({', '.join(f'{k} {v}' for k, v in m.items() if k != 'bytes_changed' and not isinstance(v, (list, dict)))})")
    print()
    print(table(result))
    print()
    runs = [f"{name} {'/'.join(f'{t * 1e3:.0f}' for t in tool['steps']['nochange']['runs_seconds'])}"
            for name, tool in result["tools"].items()
            if tool["status"] == "ran" and "runs_seconds" in tool["steps"].get("nochange", {})]
    if runs:
        print(f"no-change snapshot, the {NOCHANGE_RUNS} runs in ms (the table has their median): "
              + "; ".join(runs))
        print()
    for name, met, text in targets(result):
        mark = "n/a" if met is None else ("met" if met else "MISSED")
        print(f"- target {mark}: {name}: {text}")


def rss_summary(results):
    rows = [(r["scale"], r["dataset_bytes"], max(s["peak_rss_kib"] for s in r["tools"]["autosave"]["steps"].values()))
            for r in results if r["tools"].get("autosave", {}).get("status") == "ran"]
    if len(rows) > 1:
        print("\nautosave peak RSS by scale: " + ", ".join(
            f"scale {s} ({b / MIB:.0f} MiB): {k / 1024:.0f} MiB" for s, b, k in rows))


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
    fs = subprocess.run(["df", "-T", DATA], capture_output=True, text=True).stdout.splitlines()[-1].split()[1]
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": round(int(mem) / 2**20, 1),
            "kernel": platform.release(), "filesystem": fs, "python": platform.python_version(),
            "load_avg": os.getloadavg()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, nargs="+", default=[0.25],
                        help="dataset scale(s); 1.0 is about 1 GiB (default 0.25)")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated, from " + ",".join(TOOLS))
    parser.add_argument("--out", help="write all figures to this JSON file")
    parser.add_argument("--drop-caches", action="store_true",
                        help="empty the page cache before each timed step (root; slows the whole machine)")
    parser.add_argument("--keep", action="store_true", help="keep the copies and repositories")
    args = parser.parse_args()
    tools = [t for t in args.tools.split(",") if t]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    if "autosave" in tools:
        cargo(["build", "--release", "-p", "autosave-cli"])
    args.limits_binary = limits_binary()
    os.makedirs(DATA, exist_ok=True)
    rss = rss_method()
    try:
        results = [bench_scale(scale, tools, args) for scale in args.scale]
    finally:
        delete_leftovers()
    info = {"command": " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]]),
            "machine": machine(), "peak_rss": rss, "results": results}
    print(f"machine: {info['machine']}")
    print(f"command: python3 {info['command']}")
    print(f"peak RSS: {rss['method']}; floor (`true`) {rss['floor_kib']} KiB")
    cache = "emptied before each timed step" if args.drop_caches else "warm"
    print(f"times: wall clock of whole processes; page cache: {cache}; sizes: apparent bytes")
    for r in results:
        report(r)
    rss_summary(results)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Checks Cargo.lock against the RustSec advisory database, offline.

    python3 .ci/audit.py [--db DIR] [--refresh] [LOCKFILES...]

The database is `../shared/advisory-db` beside the project when present (a
snapshot of RustSec's `crates/`), else the trimmed copy in
`.ci/advisories/`: the advisories of the crates we lock, and the names of
every crate the full database has advisories for, so that a crate added
later without `--refresh` is caught. `--refresh` rewrites that copy from
the full database. A vulnerability fails; an informational advisory
(unmaintained, unsound) is printed and fails too unless it is listed in
`.ci/audit-allow.txt` with the reason. Withdrawn advisories are skipped.
"""
import argparse
import pathlib
import re
import shutil
import sys
import tomllib

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
TRIMMED = HERE / "advisories"


def parse_version(v):
    core = re.split(r"[-+]", v.strip(), maxsplit=1)
    nums = [int(x) for x in core[0].split(".")]
    while len(nums) < 3:
        nums.append(0)
    pre = v.strip()[len(core[0]):].startswith("-")
    # A pre-release sorts before its release.
    return (tuple(nums[:3]), 0 if pre else 1)


def matches(version, req):
    """One RustSec requirement: comma-separated comparators, all must hold."""
    v = parse_version(version)
    for part in req.split(","):
        part = part.strip()
        m = re.match(r"^(>=|<=|>|<|=|\^)?\s*(.+)$", part)
        op, want = m.group(1) or "^", m.group(2)
        w = parse_version(want)
        if op == ">=" and not v >= w:
            return False
        if op == ">" and not v > w:
            return False
        if op == "<=" and not v <= w:
            return False
        if op == "<" and not v < w:
            return False
        if op == "=" and v[0] != w[0]:
            return False
        if op == "^":
            # Caret: same leftmost non-zero component, not below.
            nums = [int(x) for x in re.split(r"[-+]", want)[0].split(".")]
            while len(nums) < 3:
                nums.append(0)
            if v < w:
                return False
            vn = v[0]
            if nums[0] > 0:
                if vn[0] != nums[0]:
                    return False
            elif nums[1] > 0:
                if vn[0] != 0 or vn[1] != nums[1]:
                    return False
            elif vn[:3] != tuple(nums[:3]):
                return False
    return True


def advisory(path):
    text = path.read_text(encoding="utf-8")
    m = re.search(r"```toml\n(.*?)\n```", text, re.S)
    return tomllib.loads(m.group(1)) if m else None


def affected(version, adv):
    vers = adv.get("versions", {})
    for req in vers.get("patched", []) + vers.get("unaffected", []):
        if matches(version, req):
            return False
    return True


def locked(lockfiles):
    pkgs = set()
    for lf in lockfiles:
        data = tomllib.loads(pathlib.Path(lf).read_text())
        for p in data.get("package", []):
            # Only what comes from a registry (our own and vendored path
            # crates are ours to check).
            if p.get("source", "").startswith("registry+") or p["name"] in ("tiny_http", "retina"):
                pkgs.add((p["name"], p["version"]))
    return sorted(pkgs)


def refresh(db, pkgs):
    if TRIMMED.exists():
        shutil.rmtree(TRIMMED)
    (TRIMMED / "crates").mkdir(parents=True)
    names = sorted(d.name for d in (db / "crates").iterdir() if d.is_dir())
    (TRIMMED / "all-crates.txt").write_text("\n".join(names) + "\n")
    for name in sorted({n for n, _ in pkgs}):
        src = db / "crates" / name
        if src.is_dir():
            shutil.copytree(src, TRIMMED / "crates" / name)
    print(f"refreshed {TRIMMED}: {len(names)} crates in the database")


def self_test():
    """The checker must catch what it is for: fails if it does not."""
    assert matches("0.20.9", "< 0.21") and not matches("0.21.0", "< 0.21")
    assert matches("0.23.46", ">= 0.23.5") and not matches("0.23.4", ">= 0.23.5")
    assert matches("0.22.4", ">= 0.22.4, < 0.23.0") and not matches("0.23.1", ">= 0.22.4, < 0.23.0")
    assert matches("1.2.3", "^1.2") and not matches("2.0.0", "^1.2") and not matches("0.3.0", "^0.2")
    assert parse_version("1.0.0-rc.1") < parse_version("1.0.0")
    adv = {"versions": {"patched": [">= 0.23.5", ">= 0.21.11, < 0.22.0"]}}
    assert affected("0.20.9", adv) and not affected("0.23.46", adv) and not affected("0.21.12", adv)
    print("audit self-test: ok")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=pathlib.Path)
    ap.add_argument("--refresh", action="store_true")
    ap.add_argument("lockfiles", nargs="*")
    a = ap.parse_args()
    self_test()
    lockfiles = a.lockfiles or [ROOT / "Cargo.lock", ROOT / "bench/load/Cargo.lock"]
    lockfiles = [l for l in lockfiles if pathlib.Path(l).exists()]
    pkgs = locked(lockfiles)
    full = a.db or ROOT.parent / "shared" / "advisory-db"
    if a.refresh:
        refresh(full, pkgs)
    db = full if (full / "crates").is_dir() else TRIMMED
    if db == TRIMMED:
        known = set((TRIMMED / "all-crates.txt").read_text().split())
        stale = sorted(n for n, _ in pkgs if n in known and not (TRIMMED / "crates" / n).is_dir())
        if stale:
            print(f"the trimmed advisories lack {stale}: run .ci/audit.py --refresh where the full database is")
            return 1
    allowed = {}
    allow = HERE / "audit-allow.txt"
    if allow.exists():
        for line in allow.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                rid, _, why = line.partition(" ")
                allowed[rid] = why.strip()
    bad = 0
    for name, version in pkgs:
        d = db / "crates" / name
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.md")):
            adv = advisory(f)
            if not adv or adv["advisory"].get("withdrawn") or not affected(version, adv):
                continue
            info = adv["advisory"].get("informational")
            rid = adv["advisory"]["id"]
            kind = f"informational ({info})" if info else "vulnerability"
            title = next((l[2:] for l in f.read_text().splitlines() if l.startswith("# ")), "")
            if rid in allowed:
                print(f"allowed: {name} {version}: {rid} {kind}: {title} -- {allowed[rid]}")
                continue
            print(f"{name} {version}: {rid} {kind}: {title}")
            bad += 1
    print(f"{len(pkgs)} locked crates checked against {db}: {bad} advisories")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The minimum Rust version, computed from Cargo.lock (README, "Requirements").

Reads `cargo metadata` and takes the highest `rust-version` among the locked packages the
proxy is built from, and among those its tests are built from (dev-dependencies included).
Fails when either is above what Cargo.toml declares: `package.rust-version` for the proxy,
`package.metadata.msrv.tests` for the tests. Run by .ci/run, so a dependency update that
raises the minimum is caught where it lands.
"""
import json
import subprocess
import sys


def version(text):
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = meta["resolve"]["root"]

    def closure(with_dev):
        seen, stack = set(), [root]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            for dep in nodes[node]["deps"]:
                kinds = {k["kind"] for k in dep["dep_kinds"]}
                # Only the root's dev-dependencies are built (for its tests).
                if kinds == {"dev"} and not (with_dev and node == root):
                    continue
                stack.append(dep["pkg"])
        seen.discard(root)
        return seen

    def highest(ids):
        found = [
            (version(packages[i]["rust_version"]), packages[i]["name"], packages[i]["version"])
            for i in ids
            if packages[i].get("rust_version")
        ]
        return max(found)

    own = packages[root]
    declared = {
        "the proxy": (own.get("rust_version"), "package.rust-version"),
        "the tests": (
            ((own.get("metadata") or {}).get("msrv") or {}).get("tests"),
            "package.metadata.msrv.tests",
        ),
    }
    failed = False
    for (what, (said, key)), with_dev in zip(declared.items(), (False, True)):
        need, name, ver = highest(closure(with_dev))
        need_text = ".".join(map(str, need))
        print(f"{what}: Rust {need_text} or newer (set by {name} {ver}); Cargo.toml {key} = {said}")
        if said is None or version(said) < need:
            print(f"error: {key} must be at least {need_text}: update Cargo.toml and the README")
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

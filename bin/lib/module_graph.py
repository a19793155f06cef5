#!/usr/bin/env python3
"""Prints the module graph of docs/architecture.md: the shop's own targets (tests left out) and their declared
dependencies on each other, without the edges that a longer path already implies, as a mermaid flowchart."""
import json, subprocess

package = json.loads(subprocess.run(["swift", "package", "dump-package"], capture_output=True, text=True, check=True).stdout)
targets = [t for t in package["targets"] if t["type"] in ("regular", "executable")]
names = {t["name"] for t in targets}
edges = {}
for target in targets:
    deps = []
    for dependency in target["dependencies"]:
        name = (dependency.get("byName") or dependency.get("target") or [None])[0]
        if name in names:
            deps.append(name)
    edges[target["name"]] = deps

def reachable(start, skip):
    seen, stack = set(), [d for d in edges[start] if d != skip]
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(edges[node])
    return seen

node = lambda name: f"{name.replace('-', '_')}[{name}]"
print("```mermaid\nflowchart BT")
for target in targets:
    for dep in edges[target["name"]]:
        if dep not in reachable(target["name"], dep):
            print(f"    {node(target['name'])} --> {node(dep)}")
print("```")

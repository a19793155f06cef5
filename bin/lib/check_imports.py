#!/usr/bin/env python3
"""Checks that every target of Package.swift imports exactly what it declares: no module used without being
declared (SwiftPM lets a target import any module built before it), and no dependency declared but never
imported. Reads `swift package dump-package`; prints each mismatch and exits 1 if there is one."""
import json, os, re, subprocess, sys

package = json.loads(subprocess.run(["swift", "package", "dump-package"], capture_output=True, text=True, check=True).stdout)
# Modules of the toolchain and the system, which are not declared.
system = {"Foundation", "FoundationEssentials", "Dispatch", "Glibc", "Darwin", "Synchronization", "XCTest", "Testing",
          "_Concurrency", "os", "Observation", "CSQLite", "SQLite3", "Musl"}
products = {}  # product name -> module names it brings (products of one package named like their module)
failures = []
for target in package["targets"]:
    name, kind = target["name"], target["type"]
    if kind in ("plugin", "system"):
        continue
    declared = set()
    for dependency in target["dependencies"]:
        if "byName" in dependency:
            declared.add(dependency["byName"][0])
        elif "target" in dependency:
            declared.add(dependency["target"][0])
        elif "product" in dependency:
            declared.add(dependency["product"][0])
    path = target.get("path") or os.path.join("Tests" if kind == "test" else "Sources", name)
    imported = set()
    for root, _, files in os.walk(path):
        for file in files:
            if file.endswith(".swift"):
                for line in open(os.path.join(root, file), encoding="utf-8"):
                    match = re.match(r"\s*(?:@testable\s+|@_spi\(\w+\)\s+)?import\s+(?:struct\s+|class\s+|enum\s+|func\s+)?(\w+)", line)
                    if match:
                        imported.add(match.group(1))
    imported -= system
    # A product may bring a module of another name (AsyncHTTPClient's product is its module; GRDB's too).
    for module in sorted(imported - declared):
        failures.append(f"{name}: imports {module} without declaring it")
    for module in sorted(declared - imported):
        failures.append(f"{name}: declares {module} but never imports it")
for failure in failures:
    print(failure)
sys.exit(1 if failures else 0)

"""The simulator's imports form a DAG and reach only risk_tui.core and risk_tui.config."""

from __future__ import annotations

import grimp
import pytest

SIM = "risk_tui.sim"
ALLOWED = ("risk_tui.core", "risk_tui.config", SIM)  # each with its submodules


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # Every import statement counts: module level, inside functions and under
    # `if TYPE_CHECKING:` (grimp keeps those unless told otherwise). No cache on disk.
    return grimp.build_graph("risk_tui", include_external_packages=False, cache_dir=None)


def sim_modules(graph: grimp.ImportGraph) -> set[str]:
    return {SIM} | graph.find_descendants(SIM)


def where(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    details = graph.get_import_details(importer=importer, imported=imported)
    lines = [f"{d['line_number']}: {d['line_contents']}" for d in details]
    return f"{importer} -> {imported} ({'; '.join(lines)})"


def reaches(edges: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def test_the_graph_sees_the_simulator(graph: grimp.ImportGraph) -> None:
    modules = sim_modules(graph)
    assert {f"{SIM}.state", f"{SIM}.scenarios", f"{SIM}.orders", f"{SIM}.app"} <= modules
    assert graph.direct_import_exists(importer=f"{SIM}.app", imported=f"{SIM}.state")


def test_no_import_cycle_among_sim_modules(graph: grimp.ImportGraph) -> None:
    modules = sim_modules(graph)
    edges = {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}
    # An import a -> b is on a cycle exactly when b leads back to a.
    on_cycles = sorted(
        where(graph, a, b) for a, targets in edges.items() for b in targets if reaches(edges, b, a)
    )
    assert not on_cycles, "imports on a cycle:\n" + "\n".join(on_cycles)


def test_sim_imports_only_core_config_and_itself(graph: grimp.ImportGraph) -> None:
    outside = sorted(
        where(graph, module, imported)
        for module in sim_modules(graph)
        for imported in graph.find_modules_directly_imported_by(module)
        if not any(imported == a or imported.startswith(f"{a}.") for a in ALLOWED)
    )
    assert not outside, "the simulator imports beyond core and config:\n" + "\n".join(outside)

"""Step 3 of a drawing: keep Graphviz's layout affordable; long edges become repeated nodes.

What makes `dot` slow is not the number of nodes but the length of the edges: it puts every node
on a rank (a column, left to right) and adds one invisible *virtual node* for each rank an edge
crosses. A parameter used at the start of a model and again deep in a 300-term L2 sum gives one
edge across 600 ranks; a few hundred of those and `dot` works for minutes on 200,000 virtual
nodes. The one idea to understand: such an edge is cut, and a small dashed copy of its source,
marked ↻, is drawn next to the node that uses it. Small expressions have no long edges and are
drawn exactly as before; the caption counts the repeats.
"""

from __future__ import annotations

from dataclasses import replace

from autodiff.viz.scene import Edge, Item, Scene, drawn_values, nearest

# An edge is long when it crosses more than this many ranks (a value and its operation node are
# two ranks, so this is eight operations apart): beyond that a line across the drawing is harder
# to follow than a repeated node, and its virtual nodes start to cost.
LONG_SPAN = 16
# Virtual nodes a drawing may cost. Graphviz 2.43's x-positioning grows much faster than the
# virtual nodes: on drawings of ~300 nodes, 1,400 of them took 0.4 s, 4,000 took 6 s, 6,000
# took 77 s and 11,000 did not finish in minutes.
BUDGET = 2_000
# Nodes (real and virtual) past which `dot` is told to stop improving the layout early.
BIG_DRAWING = 4_000
ITERATIONS = 1_500
# Shorter spans tried, in turn, when cutting at LONG_SPAN leaves a drawing over budget.
SHORTER_SPANS = (8, 4)


def ranks(
    n: int, tails: list[int], heads: list[int]
) -> tuple[list[int], list[int]]:
    """Ranks for nodes 0..n-1 joined by edges tails[i] -> heads[i]: (as_late, at_home).

    `as_late` puts each node as late as its users allow (the longest path to a sink, counted
    back from the last rank): that is just before its earliest user, as `dot` tends to, so the
    edges that stay long are those to its later users. `at_home` differs for inputs (nodes
    without inputs): each is put just before its *first* user in edge order. Edges are written
    in the order the expression was built (the model before the L2 term that reuses its
    weights), so an input's original stays with its first use and the far-away uses get the
    copies. `at_home` may point an edge backwards: it chooses the edges to cut, and `as_late`,
    a valid ranking, measures the cost. O(n + edges); edges on a cycle are not followed.
    """
    out: list[list[int]] = [[] for _ in range(n)]
    has_input = [False] * n
    waiting = [0] * n  # users not yet placed
    for t, h in zip(tails, heads):
        out[t].append(h)
        has_input[h] = True
        waiting[t] += 1
    into: list[list[int]] = [[] for _ in range(n)]
    for t, h in zip(tails, heads):
        into[h].append(t)
    depth = [-1] * n  # longest path to a sink
    queue = [node for node in range(n) if waiting[node] == 0]
    for node in queue:  # the queue grows while it is walked
        depth[node] = max([depth[h] for h in out[node]], default=-1) + 1
        for t in into[node]:
            waiting[t] -= 1
            if waiting[t] == 0:
                queue.append(t)
    for node in range(n):  # on a cycle: place by whatever is known
        if depth[node] < 0:
            depth[node] = max([depth[h] for h in out[node]], default=-1) + 1
    top = max(depth, default=0)
    as_late = [top - d for d in depth]
    at_home = list(as_late)
    for node in range(n):
        if out[node] and not has_input[node]:
            at_home[node] = as_late[out[node][0]] - 1
    return as_late, at_home


def cost(tails: list[int], heads: list[int], rank: list[int]) -> int:
    """The virtual nodes `dot` adds for these edges with this ranking: one per rank an edge
    crosses. `dot` finds the ranking with the fewest, so for a valid ranking this is an upper
    bound on its work."""
    return sum(max(0, abs(rank[h] - rank[t]) - 1) for t, h in zip(tails, heads))


def repeat_long_edges(
    items: list[Item], edges: list[Edge], long_span: int | None = None
) -> tuple[list[Item], list[Edge], int, int, int]:
    """Replace each edge longer than `long_span` ranks whose tail has `again` by an edge from
    a dashed copy of the tail, drawn next to the head (one copy per tail and head, in the head's
    cluster). Returns (items, edges, copies made, edges cut, estimated cost in virtual nodes).

    Cutting edges lets nodes move, so the ranks are estimated again until no long edge is left
    (one more round in practice); the cost is that of the final drawing. Without long edges the
    lists are returned unchanged.
    """
    long_span = LONG_SPAN if long_span is None else long_span
    index = {item.id: i for i, item in enumerate(items)}
    for e in edges:  # an edge may name a node that is not an item: give it a number too
        index.setdefault(e.tail, len(index))
        index.setdefault(e.head, len(index))
    tails = [index[e.tail] for e in edges]
    heads = [index[e.head] for e in edges]
    n = len(index)
    copies: dict[tuple[int, int], int] = {}  # (tail, head) -> the copy drawn next to head
    cut: list[int] = []  # the edges cut, by position
    for _ in range(5):
        as_late, at_home = ranks(n, tails, heads)
        long = [
            i
            for i, (t, h) in enumerate(zip(tails, heads))
            if t < len(items)
            and items[t].again is not None
            and abs(at_home[h] - at_home[t]) > long_span
        ]
        if not long:
            break
        for i in long:
            copy = copies.setdefault((tails[i], heads[i]), n)
            if copy == n:
                n += 1
            tails[i] = copy
            cut.append(i)
    if not cut:
        return items, edges, 0, 0, cost(tails, heads, as_late)
    item_of = {i: item for i, item in enumerate(items)}
    name = {i: key for key, i in index.items()}
    # A node fed only by copies (p * p in an L2 term) is far from the originals: it leaves their
    # cluster, with its value box (an operation `x_op` draws the value `x`), so that a Neuron's
    # box does not stretch across the drawing to hold it.
    only_copies: dict[int, bool] = {}
    for t, h in zip(tails, heads):
        only_copies[h] = only_copies.get(h, True) and t >= len(index)
    copy_fed = {h for h, only in only_copies.items() if only and h < len(items)}
    leaving = {items[h].id for h in copy_fed if items[h].cluster is not None}
    leaving |= {i.removesuffix("_op") for i in leaving if i.endswith("_op")}
    if leaving:
        items = [replace(i, cluster=None) if i.id in leaving else i for i in items]
        item_of = dict(enumerate(items))
    extra = []
    for (t, h), copy in copies.items():
        name[copy] = f"{name[t]}_again{copy - len(index)}"
        look = item_of[t].again
        extra.append(Item(name[copy], look, item_of[h].cluster if h in item_of else None))
    edges = list(edges)
    for i in cut:
        edges[i] = replace(edges[i], tail=name[tails[i]])  # keeps the gradient it carries
    return items + extra, edges, len(copies), len(cut), cost(tails, heads, as_late)


def affordable(scene: Scene) -> Scene:
    """The scene with its long edges drawn as repeated nodes: at LONG_SPAN, or at a shorter span
    when that is still over BUDGET (the shortest one tried if none is within it). A summary is
    first cut down to its `limit` nodes nearest the output, then to half as many, and half
    again, while it stays over BUDGET. Its caption says what was repeated and left out, and a
    big drawing is told to bound Graphviz's effort."""
    whole = scene
    keep = scene.limit
    notes = list(scene.notes)
    if scene.summary and keep is not None:
        while True:
            if drawn_values(whole) > keep:
                scene, left_out = nearest(whole, keep)
            result = _repeated(scene)
            if result[4] <= BUDGET or keep <= 25:
                break
            keep //= 2  # still slow to lay out: draw less
        cut_down = []
        if scene is not whole:
            cut_down.append(
                f"Only the {keep} nodes nearest the output are drawn; {left_out:,} "
                "more are left out (the grey '… more' boxes)."
            )
        if keep < whole.limit:
            cut_down.append(
                f"(Fewer than max_nodes={whole.limit}, so that Graphviz lays the drawing out in "
                "seconds.)"
            )
        notes[-1:-1] = cut_down  # before the summary's last note, how to draw every node
    else:
        result = _repeated(scene)
    items, edges, copies, cut, cost = result
    if cut:
        notes.append(repeat_note(copies, cut))
    limits = effort_limits(len(items), cost)
    if limits:
        notes.append(
            "A big drawing: Graphviz is told to stop improving the layout early (nslimit, "
            "mclimit), so that it finishes; edges may cross more than they need to."
        )
    return replace(scene, items=items, edges=edges, notes=notes, cost=cost, limits=limits)


def _repeated(scene: Scene):
    """Long edges cut at LONG_SPAN, or at shorter spans while over BUDGET."""
    result = repeat_long_edges(scene.items, scene.edges)
    for span in SHORTER_SPANS:
        if result[4] <= BUDGET:
            break
        result = repeat_long_edges(scene.items, scene.edges, span)
    return result


def repeat_note(copies: int, cut: int) -> str:
    edges = f"{cut} long edge{'s' if cut > 1 else ''}"
    nodes = f"{copies} repeated node{'s' if copies > 1 else ''}"
    return (
        f"{edges} drawn as {nodes} instead (dashed, marked ↻; hover one to see "
        "where its original is), so that the layout stays quick and readable."
    )


def effort_limits(nodes: int, virtual: int) -> dict[str, str]:
    """Graph attributes that bound Graphviz's work on a big drawing ({} for a small one).

    Past a few thousand nodes, even with short edges, `dot` spends minutes improving node order
    (mincross) and x positions (a network simplex whose iterations each touch every node).
    `mclimit` scales down the first; `nslimit` caps the second at about ITERATIONS iterations.
    The layout stays valid, just less tidy."""
    if nodes + virtual <= BIG_DRAWING:
        return {}
    return {
        "nslimit": f"{max(0.01, min(1.0, ITERATIONS / nodes)):.3g}",
        "mclimit": f"{max(0.05, min(1.0, BIG_DRAWING / (nodes + virtual))):.2g}",
    }

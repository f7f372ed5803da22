"""The critical path of a trace: the chain of spans that sets its end-to-end time.

Walking back from the end of a span, the time is attributed to the child that finished last
(clipped to the walk's cursor); the walk then continues before that child's start, so
sequential children chain and parallel children only count through the one that finished
last. Time no child covers is the span's own. Spans that outlive their parent count under the
nearest ancestor still running. The sum of the path is the trace's end-to-end time.
O(n log n) for every shape: chains, fan-out, many roots, hand-offs.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from typing import Any, NamedTuple

from .spans import Span


class Segment(NamedTuple):
    """A stretch of time on the critical path spent in `span` itself."""

    span: Span
    start: float
    end: float


def _children(spans: list[Span]) -> tuple[dict[str | None, list[Span]], list[Span]]:
    """Children by (effective) parent id, and the roots; O(n log n) for every shape.

    A span that ends after its parent (an asynchronous hand-off: the caller returned before
    the callee finished) hangs under the nearest ancestor still running when it ends, or
    becomes a root; otherwise its time would fall outside every span the walk visits.

    Without hand-offs every span stays under its parent (one pass). With them, a depth-first
    walk keeps, for the current span, the ancestors it could hang under: those that end no
    earlier than every span below them on the path (so their ends never increase towards the
    span). Where a span belongs is a binary search in that stack; below it, the stack is cut
    there and the span pushed, and that is undone when its subtree is done.
    """
    by_id = {span.span_id: span for span in spans}
    kids: dict[str | None, list[Span]] = defaultdict(list)
    hand_offs = False
    for span in spans:
        parent = by_id.get(span.parent_id or "") if span.parent_id != span.span_id else None
        kids[parent.span_id if parent is not None else None].append(span)
        hand_offs = hand_offs or (parent is not None and (parent.end or 0.0) < (span.end or 0.0))
    if not hand_offs:  # the usual trace: every span under its own parent
        roots = kids.pop(None, [])
        return kids, roots
    children: dict[str | None, list[Span]] = defaultdict(list)
    roots: list[Span] = []
    stack: list[Span] = []      # candidate ancestors of the current span, ends non-increasing upwards
    negated: list[float] = []   # -end of each, for bisect
    visited: set[str] = set()
    # Spans in a parent cycle (bad input) are reached by no root: they start walks of their own.
    for start in [*kids.get(None, ()), *spans]:
        if start.span_id in visited:
            continue
        size = 0
        # Entries: (span, None) to enter it; (None, (size, place, saved)) to undo what entering did.
        work: list[tuple[Span | None, tuple[int, int, tuple[Span, float] | None] | None]] = [(start, None)]
        while work:
            span, undo = work.pop()
            if span is None:
                assert undo is not None
                size, place, saved = undo
                if saved is not None:
                    stack[place], negated[place] = saved
                continue
            if span.span_id in visited:
                continue
            visited.add(span.span_id)
            end = span.end or 0.0
            place = bisect_right(negated, -end, 0, size)  # stack[:place] ends no earlier than the span
            (children[stack[place - 1].span_id] if place else roots).append(span)
            # Save the slot even beyond `size`: it may hold part of an ancestor's stack, hidden for now.
            saved = (stack[place], negated[place]) if place < len(stack) else None
            if saved is not None:
                stack[place], negated[place] = span, -end
            else:
                stack.append(span)
                negated.append(-end)
            work.append((None, (size, place, saved)))
            size = place + 1
            work.extend((child, None) for child in reversed(kids.get(span.span_id, ())))
    return children, roots


def critical_path(spans: list[Span]) -> list[Segment]:
    """Segments of the critical path in time order (of the finished spans among `spans`)."""
    spans = [span for span in spans if span.end is not None]
    if not spans:
        return []
    children, roots = _children(spans)
    # Several roots (or orphans) are treated as children of one virtual span covering the trace.
    virtual = Span("", "", "", "", min(span.start for span in spans))
    virtual.end = max(span.end for span in spans if span.end is not None)
    segments: list[Segment] = []  # appended latest first: the walk goes back in time
    append, kids_of = segments.append, children.get
    # Explicit stack instead of recursion: traces can nest thousands deep.
    # Frame: [span, its children latest-ending first (an iterator), cursor, floor]. The floor is where
    # the span's time on the path begins: its start, or its parent's floor when it claims to start
    # earlier (clock skew between hosts), so no segment falls outside its parent's.
    stack: list[list[Any]] = [[virtual, iter(_by_end(roots)), virtual.end, virtual.start]]
    while stack:
        frame = stack[-1]
        span, kids, cursor, floor = frame
        for child in kids:
            if cursor <= floor:
                break  # nothing left of this span to attribute
            start = child.start if child.start > floor else floor
            if start >= cursor:
                continue  # entirely after the cursor: not on the path
            end = child.end if child.end > start else start  # (ends before the floor: skew)
            if end < cursor:
                append(Segment(span, end, cursor))  # the parent's own time after the child
            else:
                end = cursor
            frame[2] = start
            grandchildren = kids_of(child.span_id)
            if grandchildren:
                stack.append([child, iter(_by_end(grandchildren)), end, start])
                break
            if end > start:  # a leaf: all of its time until the cursor is its own
                append(Segment(child, start, end))
            cursor = start
        else:
            if cursor > floor:
                append(Segment(span, floor, cursor))
            stack.pop()
            continue
        if stack[-1] is frame:  # stopped at the floor without descending
            stack.pop()
    return [segment for segment in reversed(segments) if segment.span is not virtual and segment.end > segment.start]


def _by_end(spans: list[Span]) -> list[Span]:
    if len(spans) < 2:
        return spans
    return sorted(spans, key=lambda span: (span.end, span.start), reverse=True)

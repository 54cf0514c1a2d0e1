"""The compiled loops of `optimizer.descent`: best-improvement descent and cheapest insertion
over routes held as rows of an array.

Routes are rows of `paths`, depots included; `sizes` says how much of each row is used. Per
route and position: `dep` the earliest departure, `lat` the latest start that keeps the rest of
the route in time, `arc` the arc cost from the start, `load` the goods boarded for the stops up
to and including it (volume and weight). `nodes` holds per-node matrices and vectors (travel,
cost, service, ready, due, boarded, penalty), `vans` per-vehicle ones (shift opening and
closing, capacity, end class, lunch).

A lunch break is not in `dep` and `lat`: those are the day without it, and since lunch only
ever delays what follows, a move they refuse is refused with lunch too. A move they accept is
replayed with its lunch (`holds`) before it may become the best one: the constant-time tests
filter, the replay decides, so only the few moves that would improve on the best so far pay
for a replay, and days without lunch pay nothing.

A module of its own, imported only when a search first needs it: importing numba takes about
0.3 s, which the process a rival search is spawned into would otherwise spend before its parent
can go on.
"""

from __future__ import annotations

import numpy as np
from numba import njit

LONGEST_STRING = 3
_INFEASIBLE = np.int64(2**62)


@njit(cache=True)
def refresh(r, paths, sizes, vehicles, nodes, vans, dep, lat, arc, load):  # type: ignore[no-untyped-def]
    travel, cost, service, ready, due, boarded, _ = nodes
    opens, closes = vans[0], vans[1]
    v = vehicles[r]
    m = sizes[r]
    p = paths[r]
    dep[r, 0] = opens[v]
    arc[r, 0] = 0
    load[r, 0, 0] = 0
    load[r, 1, 0] = 0
    for k in range(1, m):
        start = dep[r, k - 1] + travel[p[k - 1], p[k]]
        opening = opens[v] if k == m - 1 else ready[p[k]]
        if start < opening:
            start = opening
        dep[r, k] = start + service[p[k]]
        arc[r, k] = arc[r, k - 1] + cost[p[k - 1], p[k]]
        load[r, 0, k] = load[r, 0, k - 1] + boarded[0, p[k]]
        load[r, 1, k] = load[r, 1, k - 1] + boarded[1, p[k]]
    lat[r, m - 1] = closes[v]
    for k in range(m - 2, -1, -1):
        latest = lat[r, k + 1] - travel[p[k], p[k + 1]] - service[p[k]]
        closing = closes[v] if k == 0 else due[p[k]]
        lat[r, k] = latest if latest < closing else closing


@njit(cache=True)
def states(paths, sizes, vehicles, nodes, vans):  # type: ignore[no-untyped-def]
    """`dep`, `lat`, `arc` and `load` of every route."""
    routes, width = paths.shape
    dep = np.zeros((routes, width), dtype=np.int64)
    lat = np.zeros((routes, width), dtype=np.int64)
    arc = np.zeros((routes, width), dtype=np.int64)
    load = np.zeros((routes, 2, width), dtype=np.int64)
    for r in range(routes):
        refresh(r, paths, sizes, vehicles, nodes, vans, dep, lat, arc, load)
    return dep, lat, arc, load


@njit(cache=True)
def _day(p, m, v, travel, service, ready, due, opens, closes, lunch, at):  # type: ignore[no-untyped-def]
    """The route p[:m] with its lunch in the gap before position `at` (`m - 1`: on the way
    home) or, with `at` < 0, as late as it can go: before the first stop that would end after
    the lunch window closes (`optimizer.construct.simulate`'s rule, and OR-Tools': in a gap,
    during the drive or the wait). Returns whether the day holds and, when it fails after its
    lunch, where the lunch went (0: it failed before lunch)."""
    earliest, latest, length = lunch[0, v], lunch[1, v], lunch[2, v]
    t = opens[v]
    placed = 0
    for k in range(1, m):
        leg = travel[p[k - 1], p[k]]
        if k == m - 1:
            end = t + leg
            if placed == 0:
                placed = k
                if max(t, earliest) > latest:
                    return False, placed
                end = max(t + leg, earliest) + length
            return end <= closes[v], placed
        node = p[k]
        start = max(t + leg, ready[node])
        if start > due[node]:
            return False, placed
        if placed == 0 and (k == at or (at < 0 and start + service[node] > latest)):
            placed = k
            if max(t, earliest) > latest:
                return False, placed
            start = max(max(t + leg, earliest) + length, ready[node])
            if start > due[node]:
                return False, placed
        t = start + service[node]
    return True, placed


@njit(cache=True)
def holds(p, m, v, nodes, vans):  # type: ignore[no-untyped-def]
    """Whether the route p[:m] keeps every window and its shift with its lunch somewhere: as
    late as it can go, or where that fails, in an earlier gap (latest first), as `simulate`
    tries them. Days without lunch hold by the constant-time tests alone."""
    lunch = vans[4]
    if lunch[2, v] < 0 or m <= 2:
        return True
    travel, _, service, ready, due, _, _ = nodes
    opens, closes = vans[0], vans[1]
    ok, placed = _day(p, m, v, travel, service, ready, due, opens, closes, lunch, -1)
    if ok:
        return True
    for at in range(placed - 1, 0, -1):
        if _day(p, m, v, travel, service, ready, due, opens, closes, lunch, at)[0]:
            return True
    return False


@njit(cache=True)
def _lunch_at(vehicles, r, vans):  # type: ignore[no-untyped-def]
    return vans[4][2, vehicles[r]] >= 0


@njit(cache=True)
def _relocation_holds(paths, sizes, vehicles, out, a, b, i, j, length, nodes, vans, buf):  # type: ignore[no-untyped-def]
    """Whether moving the string a[i : i + length] (or `out[i]`, a < 0) after position j of
    route b keeps both routes' lunches."""
    if _lunch_at(vehicles, b, vans):
        q = paths[b]
        n = 0
        for k in range(j + 1):
            buf[n] = q[k]
            n += 1
        for k in range(length):
            buf[n] = paths[a, i + k] if a >= 0 else out[i]
            n += 1
        for k in range(j + 1, sizes[b]):
            buf[n] = q[k]
            n += 1
        if not holds(buf, n, vehicles[b], nodes, vans):
            return False
    if a >= 0 and _lunch_at(vehicles, a, vans):
        p = paths[a]
        n = 0
        for k in range(sizes[a]):
            if k < i or k >= i + length:
                buf[n] = p[k]
                n += 1
        if not holds(buf, n, vehicles[a], nodes, vans):
            return False
    return True


@njit(cache=True)
def _swap_holds(paths, sizes, vehicles, a, b, i, j, nodes, vans, buf):  # type: ignore[no-untyped-def]
    for r, k, other in ((a, i, paths[b, j]), (b, j, paths[a, i])):
        if _lunch_at(vehicles, r, vans):
            m = sizes[r]
            buf[:m] = paths[r, :m]
            buf[k] = other
            if not holds(buf, m, vehicles[r], nodes, vans):
                return False
    return True


@njit(cache=True)
def _tails_holds(paths, sizes, vehicles, a, b, i, j, nodes, vans, buf):  # type: ignore[no-untyped-def]
    """Whether a keeping its stops up to i with b's after j, and b the reverse, keep lunch."""
    for r, k, other, cut in ((a, i, b, j), (b, j, a, i)):
        if _lunch_at(vehicles, r, vans):
            n = k + 1
            buf[:n] = paths[r, :n]
            tail = sizes[other] - (cut + 1)
            buf[n : n + tail] = paths[other, cut + 1 : sizes[other]]
            if not holds(buf, n + tail, vehicles[r], nodes, vans):
                return False
    return True


@njit(cache=True)
def _within_holds(paths, sizes, vehicles, a, i, j, length, reverse, nodes, vans, buf):  # type: ignore[no-untyped-def]
    """Whether route a keeps its lunch with p[i : i + length] moved after position j (or,
    with `reverse`, p[i .. j] reversed)."""
    if not _lunch_at(vehicles, a, vans):
        return True
    p = paths[a]
    m = sizes[a]
    buf[:m] = p[:m]
    if reverse:
        buf[i : j + 1] = p[i : j + 1][::-1]
    elif j < i:
        buf[j + 1 : j + 1 + length] = p[i : i + length]
        buf[j + 1 + length : i + length] = p[j + 1 : i]
    else:
        buf[i : j + 1 - length] = p[i + length : j + 1]
        buf[j + 1 - length : j + 1] = p[i : i + length]
    return holds(buf, m, vehicles[a], nodes, vans)


@njit(cache=True)
def string(p, k, length, travel, service, ready, due):  # type: ignore[no-untyped-def]
    """Duration, earliest departure and latest arrival of the stops p[k : k + length]."""
    a = p[k]
    duration = service[a]
    departs = ready[a] + service[a]
    arrival = due[a]
    for i in range(k + 1, k + length):
        b = p[i]
        step = travel[p[i - 1], b]
        limit = due[b] - step - duration
        if limit < arrival:
            arrival = limit
        later = ready[b] + service[b]
        departs = max(departs + step + service[b], later)
        duration += step + service[b]
    return duration, departs, arrival


@njit(cache=True)
def route_cost(r, sizes, arc, fixed):  # type: ignore[no-untyped-def]
    m = sizes[r]
    return arc[r, m - 1] + fixed if m > 2 else 0


@njit(cache=True)
def descend(paths, sizes, vehicles, out, nodes, vans, allow, fixed, most):  # type: ignore[no-untyped-def]
    """Best-improvement descent; changes `paths`, `sizes` and `out` in place and returns how
    many jobs of `out` are still left out."""
    travel, cost, service, ready, due, boarded, penalty = nodes
    capacity, end_class = vans[2], vans[3]
    routes = paths.shape[0]
    dep, lat, arc, load = states(paths, sizes, vehicles, nodes, vans)
    buf = np.empty(paths.shape[1] + LONGEST_STRING, dtype=np.int64)
    left = len(out)
    for _ in range(most):
        best = np.int64(0)
        kind = -1
        # What the best move is: kind, routes a and b, positions i and j, a length.
        ba = bb = bi = bj = bl = 0
        # Relocate a string of route a (or a job left out, a = -1) after position j of b.
        for a in range(-1, routes):
            count = left if a < 0 else sizes[a] - 2
            for i in range(1 if a >= 0 else 0, (sizes[a] - 1) if a >= 0 else left):
                for length in range(1, LONGEST_STRING + 1):
                    if a < 0 and length > 1:
                        break
                    if a >= 0 and i + length > sizes[a] - 1:
                        break
                    if a >= 0:
                        p = paths[a]
                        first, last = p[i], p[i + length - 1]
                        before, after = p[i - 1], p[i + length]
                        if dep[a, i - 1] + travel[before, after] > lat[a, i + length]:
                            continue
                        inner = arc[a, i + length - 1] - arc[a, i]
                        if length == count:
                            removal = -route_cost(a, sizes, arc, fixed)
                        else:
                            removal = (
                                cost[before, after]
                                - cost[before, first]
                                - cost[last, after]
                                - inner
                            )
                        duration, departs, arrival = string(
                            p, i, length, travel, service, ready, due
                        )
                        goods0 = load[a, 0, i + length - 1] - load[a, 0, i - 1]
                        goods1 = load[a, 1, i + length - 1] - load[a, 1, i - 1]
                    else:
                        first = last = out[i]
                        inner = 0
                        removal = -penalty[first]
                        duration, departs, arrival = string(out, i, 1, travel, service, ready, due)
                        goods0, goods1 = boarded[0, first], boarded[1, first]
                    for b in range(routes):
                        if b == a:
                            continue
                        v = vehicles[b]
                        mb = sizes[b]
                        if load[b, 0, mb - 1] + goods0 > capacity[0, v]:
                            continue
                        if load[b, 1, mb - 1] + goods1 > capacity[1, v]:
                            continue
                        fits = True
                        if a >= 0:
                            for t in range(i, i + length):
                                if not allow[paths[a, t], v]:
                                    fits = False
                        elif not allow[first, v]:
                            fits = False
                        if not fits:
                            continue
                        q = paths[b]
                        gap = cost[q[0], q[1]] if mb > 2 else -fixed
                        for j in range(mb - 1):
                            x, y = q[j], q[j + 1]
                            if mb > 2:
                                gap = cost[x, y]
                            delta = removal + inner + cost[x, first] + cost[last, y] - gap
                            if delta >= best:
                                continue
                            arrive = dep[b, j] + travel[x, first]
                            if arrive > arrival:
                                continue
                            leave = max(arrive + duration, departs)
                            if leave + travel[last, y] > lat[b, j + 1]:
                                continue
                            if not _relocation_holds(
                                paths, sizes, vehicles, out, a, b, i, j, length, nodes, vans, buf
                            ):
                                continue
                            best, kind = delta, 0
                            ba, bb, bi, bj, bl = a, b, i, j, length
        # Swap a stop of route a with a stop of route b.
        for a in range(routes):
            pa = paths[a]
            va = vehicles[a]
            for i in range(1, sizes[a] - 1):
                u = pa[i]
                for b in range(a + 1, routes):
                    pb = paths[b]
                    vb = vehicles[b]
                    if not allow[u, vb]:
                        continue
                    ua0 = load[a, 0, sizes[a] - 1] - boarded[0, u]
                    ua1 = load[a, 1, sizes[a] - 1] - boarded[1, u]
                    for j in range(1, sizes[b] - 1):
                        w = pb[j]
                        delta = (
                            cost[pa[i - 1], w]
                            + cost[w, pa[i + 1]]
                            + cost[pb[j - 1], u]
                            + cost[u, pb[j + 1]]
                            - cost[pa[i - 1], u]
                            - cost[u, pa[i + 1]]
                            - cost[pb[j - 1], w]
                            - cost[w, pb[j + 1]]
                        )
                        if delta >= best or not allow[w, va]:
                            continue
                        if ua0 + boarded[0, w] > capacity[0, va]:
                            continue
                        if ua1 + boarded[1, w] > capacity[1, va]:
                            continue
                        rest0 = load[b, 0, sizes[b] - 1] - boarded[0, w] + boarded[0, u]
                        rest1 = load[b, 1, sizes[b] - 1] - boarded[1, w] + boarded[1, u]
                        if rest0 > capacity[0, vb] or rest1 > capacity[1, vb]:
                            continue
                        start = max(dep[a, i - 1] + travel[pa[i - 1], w], ready[w])
                        if start > due[w]:
                            continue
                        if start + service[w] + travel[w, pa[i + 1]] > lat[a, i + 1]:
                            continue
                        start = max(dep[b, j - 1] + travel[pb[j - 1], u], ready[u])
                        if start > due[u]:
                            continue
                        if start + service[u] + travel[u, pb[j + 1]] > lat[b, j + 1]:
                            continue
                        if not _swap_holds(paths, sizes, vehicles, a, b, i, j, nodes, vans, buf):
                            continue
                        best, kind = delta, 1
                        ba, bb, bi, bj = a, b, i, j
        # Exchange tails: a keeps its stops up to i and takes b's after j, and b the reverse.
        for a in range(routes):
            pa = paths[a]
            ma = sizes[a]
            va = vehicles[a]
            for b in range(a + 1, routes):
                if end_class[vehicles[b]] != end_class[va]:
                    continue
                pb = paths[b]
                mb = sizes[b]
                vb = vehicles[b]
                # From which position on every stop of b may go to a's van, and of a to b's.
                b_to_a = mb - 1
                while b_to_a > 1 and allow[pb[b_to_a - 1], va]:
                    b_to_a -= 1
                a_to_b = ma - 1
                while a_to_b > 1 and allow[pa[a_to_b - 1], vb]:
                    a_to_b -= 1
                used_a = 1 if ma > 2 else 0
                used_b = 1 if mb > 2 else 0
                for i in range(ma - 1):
                    if i + 1 < a_to_b:
                        continue
                    for j in range(mb - 1):
                        if j + 1 < b_to_a:
                            continue
                        new_a = not (i == 0 and j + 1 == mb - 1)
                        new_b = not (j == 0 and i + 1 == ma - 1)
                        delta = fixed * (int(new_a) + int(new_b) - used_a - used_b)
                        if new_a:
                            delta += cost[pa[i], pb[j + 1]]
                        if new_b:
                            delta += cost[pb[j], pa[i + 1]]
                        if used_a:
                            delta -= cost[pa[i], pa[i + 1]]
                        if used_b:
                            delta -= cost[pb[j], pb[j + 1]]
                        if delta >= best:
                            continue
                        if dep[a, i] + travel[pa[i], pb[j + 1]] > lat[b, j + 1]:
                            continue
                        if dep[b, j] + travel[pb[j], pa[i + 1]] > lat[a, i + 1]:
                            continue
                        ok = True
                        for dim in range(2):
                            head_a, head_b = load[a, dim, i], load[b, dim, j]
                            tail_a = load[a, dim, ma - 1] - head_a
                            tail_b = load[b, dim, mb - 1] - head_b
                            if head_a + tail_b > capacity[dim, va]:
                                ok = False
                            if head_b + tail_a > capacity[dim, vb]:
                                ok = False
                        if not ok:
                            continue
                        if not _tails_holds(paths, sizes, vehicles, a, b, i, j, nodes, vans, buf):
                            continue
                        best, kind = delta, 2
                        ba, bb, bi, bj = a, b, i, j
        # Within a route: move a string elsewhere (or-opt) or reverse a stretch (2-opt).
        for a in range(routes):
            p = paths[a]
            m = sizes[a]
            for i in range(1, m - 1):
                for length in range(1, LONGEST_STRING + 1):
                    e = i + length - 1
                    if e > m - 2:
                        break
                    first, last = p[i], p[e]
                    duration, departs, arrival = string(p, i, length, travel, service, ready, due)
                    before, after = p[i - 1], p[e + 1]
                    closing = cost[before, after] - cost[before, first] - cost[last, after]
                    # Backward: after p[j], with p[j + 1 .. i - 1] (the stretch) behind it.
                    s_dur, s_dep, s_arr = np.int64(0), np.int64(0), np.int64(0)
                    for j in range(i - 2, -1, -1):
                        c = p[j + 1]
                        if j == i - 2:
                            s_dur, s_dep, s_arr = service[c], ready[c] + service[c], due[c]
                        else:  # the stretch grows at its front by c
                            step = travel[c, p[j + 2]]
                            s_arr = min(due[c], s_arr - step - service[c])
                            s_dep = max(ready[c] + service[c] + step + s_dur, s_dep)
                            s_dur = service[c] + step + s_dur
                        delta = closing + cost[p[j], first] + cost[last, c] - cost[p[j], c]
                        if delta >= best:
                            continue
                        t = dep[a, j] + travel[p[j], first]
                        if t > arrival:
                            continue
                        t = max(t + duration, departs) + travel[last, c]
                        if t > s_arr:
                            continue
                        t = max(t + s_dur, s_dep) + travel[p[i - 1], after]
                        if t > lat[a, e + 1]:
                            continue
                        if not _within_holds(
                            paths, sizes, vehicles, a, i, j, length, False, nodes, vans, buf
                        ):
                            continue
                        best, kind = delta, 3
                        ba, bi, bj, bl = a, i, j, length
                    # Forward: after p[j], with p[e + 1 .. j] (the stretch) before it.
                    for j in range(e + 1, m - 1):
                        c = p[j]
                        if j == e + 1:
                            s_dur, s_dep, s_arr = service[c], ready[c] + service[c], due[c]
                        else:  # the stretch grows at its back by c
                            step = travel[p[j - 1], c]
                            s_arr = min(s_arr, due[c] - step - s_dur)
                            s_dep = max(s_dep + step + service[c], ready[c] + service[c])
                            s_dur = s_dur + step + service[c]
                        nxt = p[j + 1]
                        delta = closing + cost[c, first] + cost[last, nxt] - cost[c, nxt]
                        if delta >= best:
                            continue
                        t = dep[a, i - 1] + travel[before, after]
                        if t > s_arr:
                            continue
                        t = max(t + s_dur, s_dep) + travel[c, first]
                        if t > arrival:
                            continue
                        t = max(t + duration, departs) + travel[last, nxt]
                        if t > lat[a, j + 1]:
                            continue
                        if not _within_holds(
                            paths, sizes, vehicles, a, i, j, length, False, nodes, vans, buf
                        ):
                            continue
                        best, kind = delta, 3
                        ba, bi, bj, bl = a, i, j, length
            # 2-opt: p[i .. j] reversed, its duration and timing grown one stop at a time.
            for i in range(1, m - 2):
                r_dur = service[p[i]]
                r_dep = ready[p[i]] + service[p[i]]
                r_arr = due[p[i]]
                forward_inner = np.int64(0)
                reverse_inner = np.int64(0)
                for j in range(i + 1, m - 1):
                    c = p[j]
                    step = travel[c, p[j - 1]]
                    if ready[c] + service[c] + step > r_arr:
                        break  # the reversed stretch is late in itself, and stays so longer
                    r_arr = min(due[c], r_arr - step - service[c])
                    r_dep = max(ready[c] + service[c] + step + r_dur, r_dep)
                    r_dur = service[c] + step + r_dur
                    forward_inner += cost[p[j - 1], c]
                    reverse_inner += cost[c, p[j - 1]]
                    delta = (
                        cost[p[i - 1], c]
                        + cost[p[i], p[j + 1]]
                        + reverse_inner
                        - cost[p[i - 1], p[i]]
                        - cost[c, p[j + 1]]
                        - forward_inner
                    )
                    if delta >= best:
                        continue
                    t = dep[a, i - 1] + travel[p[i - 1], c]
                    if t > r_arr:
                        continue
                    if max(t + r_dur, r_dep) + travel[p[i], p[j + 1]] > lat[a, j + 1]:
                        continue
                    if not _within_holds(
                        paths, sizes, vehicles, a, i, j, 0, True, nodes, vans, buf
                    ):
                        continue
                    best, kind = delta, 4
                    ba, bi, bj = a, i, j
        if kind < 0:
            break
        if kind == 0:
            if ba >= 0:
                moved = paths[ba, bi : bi + bl].copy()
                m = sizes[ba]
                paths[ba, bi : m - bl] = paths[ba, bi + bl : m].copy()
                sizes[ba] = m - bl
            else:
                moved = out[bi : bi + 1].copy()
                out[bi : left - 1] = out[bi + 1 : left].copy()
                left -= 1
            m = sizes[bb]
            paths[bb, bj + 1 + bl : m + bl] = paths[bb, bj + 1 : m].copy()
            paths[bb, bj + 1 : bj + 1 + bl] = moved
            sizes[bb] = m + bl
            if ba >= 0:
                refresh(ba, paths, sizes, vehicles, nodes, vans, dep, lat, arc, load)
            refresh(bb, paths, sizes, vehicles, nodes, vans, dep, lat, arc, load)
        elif kind == 1:
            u = paths[ba, bi]
            paths[ba, bi] = paths[bb, bj]
            paths[bb, bj] = u
            refresh(ba, paths, sizes, vehicles, nodes, vans, dep, lat, arc, load)
            refresh(bb, paths, sizes, vehicles, nodes, vans, dep, lat, arc, load)
        elif kind == 2:
            ma, mb = sizes[ba], sizes[bb]
            tail_a = paths[ba, bi + 1 : ma].copy()
            tail_b = paths[bb, bj + 1 : mb].copy()
            paths[ba, bi + 1 : bi + 1 + len(tail_b)] = tail_b
            paths[bb, bj + 1 : bj + 1 + len(tail_a)] = tail_a
            sizes[ba] = bi + 1 + len(tail_b)
            sizes[bb] = bj + 1 + len(tail_a)
            refresh(ba, paths, sizes, vehicles, nodes, vans, dep, lat, arc, load)
            refresh(bb, paths, sizes, vehicles, nodes, vans, dep, lat, arc, load)
        elif kind == 3:
            p = paths[ba]
            moved = p[bi : bi + bl].copy()
            if bj < bi:  # backward: p[bj + 1 .. bi - 1] moves back by the string's length
                p[bj + 1 + bl : bi + bl] = p[bj + 1 : bi].copy()
                p[bj + 1 : bj + 1 + bl] = moved
            else:  # forward: p[bi + bl .. bj] moves forward
                p[bi : bj + 1 - bl] = p[bi + bl : bj + 1].copy()
                p[bj + 1 - bl : bj + 1] = moved
            refresh(ba, paths, sizes, vehicles, nodes, vans, dep, lat, arc, load)
        else:
            paths[ba, bi : bj + 1] = paths[ba, bi : bj + 1][::-1].copy()
            refresh(ba, paths, sizes, vehicles, nodes, vans, dep, lat, arc, load)
    return left


@njit(cache=True)
def insert(paths, sizes, vehicles, removed, nodes, vans, allow, fixed, seed, blink):  # type: ignore[no-untyped-def]
    travel, cost, service, ready, due, boarded, _ = nodes
    capacity = vans[2]
    np.random.seed(seed)
    routes = paths.shape[0]
    dep, lat, arc, load = states(paths, sizes, vehicles, nodes, vans)
    buf = np.empty(paths.shape[1] + 1, dtype=np.int64)
    one = np.empty(1, dtype=np.int64)
    for u in removed:
        one[0] = u
        best = best_any = _INFEASIBLE
        at = at_any = (-1, -1)
        for b in range(routes):
            v = vehicles[b]
            m = sizes[b]
            if not allow[u, v]:
                continue
            if load[b, 0, m - 1] + boarded[0, u] > capacity[0, v]:
                continue
            if load[b, 1, m - 1] + boarded[1, u] > capacity[1, v]:
                continue
            p = paths[b]
            for j in range(m - 1):
                x, y = p[j], p[j + 1]
                delta = cost[x, u] + cost[u, y] - (cost[x, y] if m > 2 else -fixed)
                if delta >= best:
                    continue
                start = max(dep[b, j] + travel[x, u], ready[u])
                if start > due[u] or start + service[u] + travel[u, y] > lat[b, j + 1]:
                    continue
                if not _relocation_holds(
                    paths, sizes, vehicles, one, -1, b, 0, j, 1, nodes, vans, buf
                ):
                    continue
                if delta < best_any:
                    best_any, at_any = delta, (b, j)
                if delta < best and np.random.random() >= blink:
                    best, at = delta, (b, j)
        if at[0] < 0:
            at = at_any
        b, j = at
        if b < 0:
            continue
        m = sizes[b]
        paths[b, j + 2 : m + 1] = paths[b, j + 1 : m].copy()
        paths[b, j + 1] = u
        sizes[b] = m + 1
        refresh(b, paths, sizes, vehicles, nodes, vans, dep, lat, arc, load)

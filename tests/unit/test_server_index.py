"""The per-metric label index: the same answers as a filter over every series, at the cost of the answer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tidegauge.model import format_labels
from tidegauge.selectors import Operator, Requirement, Selector, parse_selector
from tidegauge.server.index import SeriesIndex

KEYS = ("queue", "state", "region", "x.io/tier")
VALUES = ("a", "b", "c", "")

label_sets = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=len(KEYS))
requirements = st.one_of(
    st.builds(
        Requirement,
        st.sampled_from(KEYS),
        st.sampled_from([Operator.EQUALS, Operator.NOT_EQUALS]),
        st.sampled_from(VALUES).map(lambda value: frozenset((value,))),
    ),
    st.builds(
        Requirement,
        st.sampled_from(KEYS),
        st.sampled_from([Operator.IN, Operator.NOT_IN]),
        st.frozensets(st.sampled_from(VALUES), min_size=1),
    ),
    st.builds(
        Requirement, st.sampled_from(KEYS), st.sampled_from([Operator.EXISTS, Operator.DOES_NOT_EXIST])
    ),
)
selectors = st.lists(requirements, max_size=4).map(lambda found: Selector(tuple(found)))


def indexed(label_sets: list[dict[str, str]]) -> SeriesIndex[dict[str, str]]:
    index: SeriesIndex[dict[str, str]] = SeriesIndex()
    for labels in label_sets:
        index.put(format_labels(tuple(sorted(labels.items()))), labels, labels)
    return index


def answer(index: SeriesIndex[dict[str, str]], selector: Selector) -> list[dict[str, str]]:
    return [labels for labels in index.select(selector) if selector.matches(labels)]


def brute_force(label_sets: list[dict[str, str]], selector: Selector) -> list[dict[str, str]]:
    by_string = {format_labels(tuple(sorted(labels.items()))): labels for labels in label_sets}
    return [by_string[name] for name in sorted(by_string) if selector.matches(by_string[name])]


@settings(max_examples=300, deadline=None)
@given(st.lists(label_sets, max_size=30), selectors)
def test_index_answers_equal_a_filter_over_every_series_in_label_order(
    series: list[dict[str, str]], selector: Selector
) -> None:
    assert answer(indexed(series), selector) == brute_force(series, selector)


@settings(max_examples=200, deadline=None)
@given(st.lists(label_sets, max_size=30), st.lists(st.integers(0, 29), max_size=20), selectors)
def test_index_stays_exact_after_series_are_removed_and_put_again(
    series: list[dict[str, str]], removals: list[int], selector: Selector
) -> None:
    # GIVEN an index from which some series were removed and some of those put back
    index = indexed(series)
    kept = list(series)
    for position in removals:
        if position < len(series):
            gone = series[position]
            index.remove(format_labels(tuple(sorted(gone.items()))))
            kept = [labels for labels in kept if labels != gone]
    for labels in series[: len(series) // 3]:
        index.put(format_labels(tuple(sorted(labels.items()))), labels, labels)
        kept.append(labels)
    # THEN it answers as a filter over what it holds now
    assert answer(index, selector) == brute_force(kept, selector)
    assert len(index) == len({format_labels(tuple(sorted(labels.items()))) for labels in kept})


def test_equality_and_in_selectors_visit_only_the_series_holding_the_pairs() -> None:
    # GIVEN 3,000 series: 1,000 queues in three states
    index = indexed([{"queue": f"q{n:04d}", "state": s} for n in range(1_000) for s in ("a", "b", "c")])
    # WHEN one queue is asked, alone or with a negative requirement THEN only its three series are looked at
    assert len(list(index.select(parse_selector("queue=q0042")))) == 3
    assert len(list(index.select(parse_selector("queue=q0042,state!=a")))) == 3
    assert len(list(index.select(parse_selector("queue in (q0001,q0002),state notin (b)")))) == 6
    # AND a pair nobody holds visits nothing, a bare key its holders, a lone negation everything
    assert list(index.select(parse_selector("queue=nope,state=a"))) == []
    assert len(list(index.select(parse_selector("state=a,queue")))) == 1_000
    assert len(list(index.select(parse_selector("state!=a")))) == 3_000


def test_dismantle_empties_the_index_a_step_at_a_time() -> None:
    # GIVEN 2,500 series
    index = indexed([{"queue": f"q{n:04d}"} for n in range(2_500)])
    # WHEN it is dismantled 1,000 entries per step THEN the entries go in three steps, then the postings
    steps = index.dismantle(1_000)
    next(steps)
    assert len(index) == 1_500
    assert sum(1 for _ in steps) == 2 + 3 + 1  # entries, label pairs, the one key
    assert len(index) == 0
    assert list(index.select(parse_selector("queue=q0001"))) == []

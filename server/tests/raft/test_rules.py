"""One test per rule of the Raft paper (Figure 2 and 3), the thesis (pre-vote
§9.6, check-quorum §6.2/§4.2.3, leadership transfer §3.10, ReadIndex §6.4) and
etcd's additions (learners, single-step membership, flow control)."""

from __future__ import annotations

import random

import pytest
from kvetch.raft import (
    CANDIDATE,
    FOLLOWER,
    LEADER,
    PRE_CANDIDATE,
    PROBE,
    REPLICATE,
    ConfChange,
    Config,
    Entry,
    MemoryStorage,
    Message,
    ProposalDropped,
    RawNode,
)
from kvetch.raft import types as t


def solo(voters: list[int], id_: int = 1, learners: list[int] | None = None, **cfg: object) -> tuple[RawNode, MemoryStorage]:
    """One node of a cluster whose peers we play by hand; bootstrap applied."""
    st = MemoryStorage()
    st.bootstrap(voters, learners or [])
    opts: dict[str, object] = {"election_tick": 10, "heartbeat_tick": 1}
    opts.update(cfg)
    rn = RawNode(Config(id=id_, storage=st, rng=random.Random(7), **opts))  # type: ignore[arg-type]
    drain(rn, st)
    return rn, st


def drain(rn: RawNode, st: MemoryStorage) -> list[Message]:
    """Run every Ready: persist, apply conf changes, collect messages."""
    from kvetch.raft.codec import decode_conf_change

    out: list[Message] = []
    while rn.has_ready():
        rd = rn.ready()
        if rd.snapshot is not None:
            st.apply_snapshot(rd.snapshot)
        st.append(rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)
        out.extend(rd.messages)
        for e in rd.committed_entries:
            if e.type == t.ENTRY_CONF_CHANGE:
                rn.apply_conf_change(decode_conf_change(e.data))
        rn.advance(rd)
    return out


def msg(type_: int, frm: int, to: int = 1, term: int = 0, **kw: object) -> Message:
    return Message(type=type_, frm=frm, to=to, term=term, **kw)  # type: ignore[arg-type]


def make_leader(voters: list[int], **cfg: object) -> tuple[RawNode, MemoryStorage]:
    """Node 1 as leader of ``voters`` (votes played by hand), followers at match 0."""
    rn, st = solo(voters, **cfg)
    rn.campaign()
    drain(rn, st)
    if rn.raft.state == PRE_CANDIDATE:
        for v in voters[1:]:
            rn.step(msg(t.MSG_PRE_VOTE_RESP, v, term=rn.term + 1))
        drain(rn, st)
    for v in voters[1:]:
        rn.step(msg(t.MSG_VOTE_RESP, v, term=rn.term))
    drain(rn, st)
    assert rn.is_leader
    return rn, st


# ---------------------------------------------------------------- Figure 2: all servers
def test_all_servers_apply_committed_entries_in_log_order(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    for k in range(5):
        c.propose(1, b"v%d" % k)
    for i in (1, 2, 3):
        idx = [a[0] for a in c.members[i].applied]
        assert idx == sorted(idx) and [a[2] for a in c.members[i].applied] == [b"v%d" % k for k in range(5)]


def test_all_servers_higher_term_in_message_converts_to_follower():
    rn, _st = make_leader([1, 2, 3])
    term = rn.term
    rn.step(msg(t.MSG_APP_RESP, 2, term=term + 3))
    assert rn.role == FOLLOWER and rn.term == term + 3 and rn.leader == 0


def test_all_servers_ignore_stale_term_messages():
    rn, st = solo([1, 2, 3])
    rn.step(msg(t.MSG_APP, 2, term=5, index=3, log_term=1))  # moves to term 5
    drain(rn, st)
    before = (rn.term, rn.commit_index)
    rn.step(msg(t.MSG_APP, 3, term=4, index=3, log_term=1, entries=[Entry(4, 4)], commit=4))
    assert (rn.term, rn.commit_index) == before and rn.raft.log.last_index() == 3


# ---------------------------------------------------------------- Figure 2: followers
def test_follower_heartbeat_from_leader_resets_election_timer(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    for _ in range(50):
        c.tick_all()
    assert c.leaders() == [1] and c[2].term == c[1].term


def test_follower_election_timeout_converts_to_candidate():
    rn, st = solo([1, 2, 3])
    term = rn.term
    for _ in range(2 * 10):
        rn.tick()
    assert rn.role == CANDIDATE and rn.term == term + 1
    votes = [m for m in drain(rn, st) if m.type == t.MSG_VOTE]
    assert sorted(m.to for m in votes) == [2, 3]


# ---------------------------------------------------------------- Figure 2: candidates
def test_candidate_on_conversion_increments_term_votes_for_self_and_requests_votes():
    rn, st = solo([1, 2, 3])
    rn.campaign()
    out = drain(rn, st)
    assert rn.role == CANDIDATE and rn.term == 2 and rn.raft.vote == 1
    assert st.hard_state.vote == 1 and st.hard_state.term == 2  # persisted with the request
    assert {(m.type, m.to, m.term, m.index, m.log_term) for m in out} == {
        (t.MSG_VOTE, 2, 2, 3, 1), (t.MSG_VOTE, 3, 2, 3, 1)}


def test_candidate_with_votes_from_majority_becomes_leader():
    rn, st = solo([1, 2, 3, 4, 5])
    rn.campaign()
    drain(rn, st)
    rn.step(msg(t.MSG_VOTE_RESP, 2, term=2))
    assert rn.role == CANDIDATE
    rn.step(msg(t.MSG_VOTE_RESP, 3, term=2))
    assert rn.role == LEADER


def test_candidate_with_majority_rejections_becomes_follower():
    rn, st = solo([1, 2, 3])
    rn.campaign()
    drain(rn, st)
    rn.step(msg(t.MSG_VOTE_RESP, 2, term=2, reject=True))
    rn.step(msg(t.MSG_VOTE_RESP, 3, term=2, reject=True))
    assert rn.role == FOLLOWER and rn.term == 2


def test_candidate_receiving_append_from_new_leader_becomes_follower():
    rn, st = solo([1, 2, 3])
    rn.campaign()
    drain(rn, st)
    rn.step(msg(t.MSG_APP, 2, term=2, index=3, log_term=1))
    assert rn.role == FOLLOWER and rn.leader == 2


def test_candidate_election_timeout_starts_new_election():
    rn, st = solo([1, 2, 3])
    rn.campaign()
    drain(rn, st)
    for _ in range(2 * 10):
        rn.tick()
    assert rn.role == CANDIDATE and rn.term == 3


def test_election_timeouts_are_randomized_in_election_tick_range():
    seen = set()
    for seed in range(30):
        st = MemoryStorage()
        st.bootstrap([1, 2, 3])
        rn = RawNode(Config(id=1, storage=st, rng=random.Random(seed)))
        seen.add(rn.raft.randomized_election_timeout)
    assert min(seen) >= 10 and max(seen) < 20 and len(seen) > 3


# ---------------------------------------------------------------- Figure 2: leaders
def test_leader_on_election_appends_empty_entry_and_replicates_it():
    rn, st = make_leader([1, 2, 3])
    out = drain(rn, st)
    ents = rn.raft.log.entries(4, 1 << 30)
    assert [(e.term, e.data) for e in ents] == [(2, b"")]
    apps = [m for m in rn.raft.msgs + out if m.type == t.MSG_APP]
    assert {m.to for m in apps} >= {2, 3} or rn.raft.trk.progress[2].state == PROBE


def test_leader_sends_heartbeats_every_heartbeat_tick():
    rn, st = make_leader([1, 2, 3])
    drain(rn, st)
    rn.tick()
    hb = [m for m in drain(rn, st) if m.type == t.MSG_HEARTBEAT]
    assert sorted(m.to for m in hb) == [2, 3]


def test_leader_commits_client_command_once_replicated_on_majority(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.cut.update({(1, 3), (3, 1)})
    c.propose(1, b"x")
    assert c.members[1].applied[-1][2] == b"x" and c.members[3].applied == []


def test_leader_does_not_commit_without_majority(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.cut.update({(1, 3), (3, 1), (1, 2), (2, 1)})
    commit = c[1].commit_index
    c.propose(1, b"x")
    assert c[1].commit_index == commit


def test_leader_counts_its_own_entry_only_after_persisting_it():
    rn, st = solo([1])
    rn.campaign()
    rd = rn.ready()
    assert rd.entries and not rd.committed_entries  # not yet persisted: not committed
    st.append(rd.entries)
    if rd.hard_state:
        st.set_hard_state(rd.hard_state)
    rn.advance(rd)
    assert rn.commit_index == rd.entries[-1].index


def test_leader_decrements_next_index_on_rejection_and_retries():
    rn, st = make_leader([1, 2, 3])
    drain(rn, st)
    pr = rn.raft.trk.progress[2]
    assert pr.state == PROBE and pr.next == 4 and pr.probe_sent
    # follower 2 has only the first 2 entries: it rejects the probe at 3 with a hint
    rn.step(msg(t.MSG_APP_RESP, 2, term=2, index=3, reject=True, reject_hint=2, log_term=1))
    out = drain(rn, st)
    app = [m for m in out if m.type == t.MSG_APP and m.to == 2]
    assert app and app[0].index == 2 and app[0].log_term == 1
    assert [e.index for e in app[0].entries] == [3, 4]


def test_leader_fast_backoff_skips_a_whole_divergent_term():
    # leader log: terms [1,1,1,4,4,4]; follower has [1,1,1,2,2,2,3,3] -> hint (8, term 3)
    rn, _st = solo([1, 2, 3])
    log = rn.raft.log
    rn.raft.become_follower(4, 0)
    log.append([Entry(4, 4), Entry(4, 5), Entry(4, 6)])
    assert log.find_conflict_by_term(6, 3) == 3  # one probe jumps to the common prefix


def test_follower_rejection_hint_points_before_its_conflicting_term():
    rn, st = solo([1, 2, 3], id_=2)
    rn.step(msg(t.MSG_APP, 1, to=2, term=2, index=3, log_term=1,
                entries=[Entry(2, 4), Entry(2, 5), Entry(2, 6)]))
    drain(rn, st)
    # new leader at term 3 probes at index 6 with log term 3: follower's entries at
    # 4..6 are term 2 < 3, so the hint is 6 with term 2
    rn.step(msg(t.MSG_APP, 3, to=2, term=3, index=6, log_term=3))
    rej = next(m for m in drain(rn, st) if m.type == t.MSG_APP_RESP)
    assert rej.reject and rej.reject_hint == 6 and rej.log_term == 2


def test_leader_commits_only_entries_of_its_current_term_by_counting():
    # Figure 8: an entry of an older term replicated on a majority is not committed
    rn, st = solo([1, 2, 3])
    rn.step(msg(t.MSG_APP, 2, term=2, index=3, log_term=1, entries=[Entry(2, 4)]))
    drain(rn, st)
    rn.campaign()
    drain(rn, st)
    rn.step(msg(t.MSG_VOTE_RESP, 3, term=3))
    drain(rn, st)
    assert rn.is_leader and rn.commit_index == 3
    # follower 3 acks index 4 (the term-2 entry) but not yet the term-3 entry
    rn.step(msg(t.MSG_APP_RESP, 3, term=3, index=4))
    assert rn.commit_index == 3
    rn.step(msg(t.MSG_APP_RESP, 3, term=3, index=5))
    assert rn.commit_index == 5


# ---------------------------------------------------------------- RequestVote RPC
def test_request_vote_rejected_if_term_older_than_current():
    rn, st = solo([1, 2, 3])
    rn.step(msg(t.MSG_HEARTBEAT, 2, term=5))
    drain(rn, st)
    rn.raft.lead = 0
    rn.step(msg(t.MSG_VOTE, 3, term=4, index=10, log_term=4))
    assert not [m for m in drain(rn, st) if m.type == t.MSG_VOTE_RESP and not m.reject]


def test_request_vote_granted_at_most_once_per_term():
    rn, st = solo([1, 2, 3])
    rn.step(msg(t.MSG_VOTE, 2, term=2, index=3, log_term=1))
    rn.step(msg(t.MSG_VOTE, 3, term=2, index=3, log_term=1))
    rn.step(msg(t.MSG_VOTE, 2, term=2, index=3, log_term=1))  # re-grant to the same one is fine
    out = [m for m in drain(rn, st) if m.type == t.MSG_VOTE_RESP]
    assert [(m.to, m.reject) for m in out] == [(2, False), (3, True), (2, False)]
    assert st.hard_state.vote == 2


@pytest.mark.parametrize(("index", "log_term", "granted"), [
    (3, 1, True), (2, 1, False), (1, 2, True), (4, 1, True), (9, 0, False)])
def test_request_vote_requires_candidate_log_at_least_as_up_to_date(index, log_term, granted):
    rn, st = solo([1, 2, 3])  # our log: 3 entries of term 1
    rn.step(msg(t.MSG_VOTE, 2, term=2, index=index, log_term=log_term))
    resp = next(m for m in drain(rn, st) if m.type == t.MSG_VOTE_RESP)
    assert resp.reject is (not granted)


def test_request_vote_response_sent_only_after_vote_is_persisted():
    rn, _st = solo([1, 2, 3])
    rn.step(msg(t.MSG_VOTE, 2, term=2, index=3, log_term=1))
    rd = rn.ready()
    assert rd.hard_state is not None and rd.hard_state.vote == 2 and rd.must_sync
    assert [m.type for m in rd.messages] == [t.MSG_VOTE_RESP]


# ---------------------------------------------------------------- AppendEntries RPC
def test_append_entries_rejected_if_term_older_than_current():
    rn, st = solo([1, 2, 3], pre_vote=True)
    rn.step(msg(t.MSG_HEARTBEAT, 2, term=5))
    drain(rn, st)
    rn.step(msg(t.MSG_APP, 3, term=4, index=3, log_term=1, entries=[Entry(4, 4)]))
    out = drain(rn, st)
    assert rn.raft.log.last_index() == 3
    assert [(m.type, m.term) for m in out] == [(t.MSG_APP_RESP, 5)]  # tells the stale leader


def test_append_entries_rejected_if_log_lacks_entry_at_prev_index_and_term():
    rn, st = solo([1, 2, 3])
    rn.step(msg(t.MSG_APP, 2, term=2, index=5, log_term=2, entries=[Entry(2, 6)]))
    resp = next(m for m in drain(rn, st) if m.type == t.MSG_APP_RESP)
    assert resp.reject and resp.reject_hint == 3 and rn.raft.log.last_index() == 3


def test_append_entries_conflict_deletes_existing_entry_and_all_that_follow():
    rn, st = solo([1, 2, 3])
    rn.step(msg(t.MSG_APP, 2, term=2, index=3, log_term=1,
                entries=[Entry(2, 4, data=b"a"), Entry(2, 5, data=b"b"), Entry(2, 6, data=b"c")]))
    drain(rn, st)
    rn.step(msg(t.MSG_APP, 3, term=3, index=4, log_term=2, entries=[Entry(3, 5, data=b"z")]))
    drain(rn, st)
    assert [(e.index, e.term, e.data) for e in st.entries(4, st.last_index() + 1, 1 << 30)] == [
        (4, 2, b"a"), (5, 3, b"z")]


def test_append_entries_appends_new_entries_and_ignores_known_ones():
    rn, st = solo([1, 2, 3])
    m = msg(t.MSG_APP, 2, term=2, index=3, log_term=1, entries=[Entry(2, 4), Entry(2, 5)])
    rn.step(m)
    drain(rn, st)
    rn.step(msg(t.MSG_APP, 2, term=2, index=3, log_term=1, entries=[Entry(2, 4)]))  # stale retry
    drain(rn, st)
    assert st.last_index() == 5


def test_append_entries_sets_commit_to_min_of_leader_commit_and_last_new_entry():
    rn, _st = solo([1, 2, 3])
    rn.step(msg(t.MSG_APP, 2, term=2, index=3, log_term=1, entries=[Entry(2, 4)], commit=9))
    assert rn.commit_index == 4


def test_heartbeat_never_advances_commit_beyond_follower_match(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.cut.update({(1, 3), (3, 1)})
    c.propose(1, b"x")
    c.cut.clear()
    c.drop_types.add(t.MSG_APP)
    c.tick(1)
    assert c[3].commit_index < c[1].commit_index  # heartbeat commit = min(match, commit)


# ---------------------------------------------------------------- Figure 3 properties
def test_election_safety_split_vote_yields_no_second_leader(cluster):
    c = cluster([1, 2, 3, 4])
    c.hold = True
    c[1].campaign()
    c[2].campaign()
    c.stabilize()
    c.deliver()
    c.hold = False
    c.stabilize()
    terms = [c[i].term for i in c.leaders()]
    assert len(terms) == len(set(terms))


def test_log_matching_followers_converge_to_leader_log(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.isolate(1)
    c[1].propose(b"lost")
    c.stabilize()
    c.elect(2)
    c.propose(2, b"kept")
    c.heal()
    c.tick_all(3)
    logs = [[(e.index, e.term) for e in c.members[i].storage.ents[1:]] for i in (1, 2, 3)]
    assert logs[0] == logs[1] == logs[2]
    assert all(b"lost" not in [a[2] for a in c.members[i].applied] for i in (1, 2, 3))


def test_leader_completeness_new_leader_has_all_committed_entries(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.propose(1, b"a")
    c.isolate(1)
    # node 3 lacks nothing committed; whoever wins must hold "a"
    c.elect(2)
    assert b"a" in [e.data for e in c.members[2].storage.ents]


def test_state_machine_safety_same_entries_applied_everywhere(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    for k in range(3):
        c.propose(1, b"%d" % k)
    c.elect(3)
    c.propose(3, b"after")
    c.tick_all(2)
    assert c.members[1].applied == c.members[2].applied == c.members[3].applied


# ---------------------------------------------------------------- pre-vote (§9.6)
def test_prevote_partitioned_node_does_not_increase_its_term(cluster):
    c = cluster([1, 2, 3], pre_vote=True)
    c.elect(1)
    term = c[1].term
    c.isolate(3)
    c.tick_all(100)
    assert c[3].term == term and c[3].role == PRE_CANDIDATE


def test_prevote_rejoining_node_does_not_disrupt_leader(cluster):
    c = cluster([1, 2, 3], pre_vote=True)
    c.elect(1)
    c.isolate(3)
    c.tick_all(100)
    c.heal()
    c.tick_all(30)
    assert c.leaders() == [1] and c[1].term == c[3].term


def test_prevote_is_rejected_for_stale_log_and_does_not_change_vote():
    rn, st = solo([1, 2, 3])
    rn.step(msg(t.MSG_PRE_VOTE, 2, term=2, index=1, log_term=1))
    resp = next(m for m in drain(rn, st) if m.type == t.MSG_PRE_VOTE_RESP)
    assert resp.reject and rn.term == 1 and rn.raft.vote == 0


def test_prevote_granted_without_changing_term_or_vote():
    rn, st = solo([1, 2, 3])
    rn.step(msg(t.MSG_PRE_VOTE, 2, term=2, index=3, log_term=1))
    resp = next(m for m in drain(rn, st) if m.type == t.MSG_PRE_VOTE_RESP)
    assert not resp.reject and resp.term == 2 and rn.term == 1 and rn.raft.vote == 0


def test_prevote_winner_then_runs_real_election(cluster):
    c = cluster([1, 2, 3], pre_vote=True)
    c.elect(2)
    assert c[2].term == 2


# ---------------------------------------------------------------- check quorum (§6.2, §4.2.3)
def test_check_quorum_leader_steps_down_when_it_hears_from_no_quorum(cluster):
    c = cluster([1, 2, 3], check_quorum=True)
    c.elect(1)
    c.isolate(1)
    c.tick(1, 2 * 10 + 1)
    assert c[1].role == FOLLOWER


def test_check_quorum_followers_ignore_vote_requests_while_leader_is_alive():
    rn, st = solo([1, 2, 3], check_quorum=True)
    rn.step(msg(t.MSG_HEARTBEAT, 2, term=2))
    drain(rn, st)
    rn.step(msg(t.MSG_VOTE, 3, term=3, index=9, log_term=2))
    assert rn.term == 2 and not [m for m in drain(rn, st) if m.type == t.MSG_VOTE_RESP]


# ---------------------------------------------------------------- leadership transfer (§3.10)
def test_transfer_leader_to_up_to_date_voter_sends_timeout_now_and_it_wins(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c[1].transfer_leader(2)
    c.stabilize()
    assert c.leaders() == [2]
    assert any(m.type == t.MSG_TIMEOUT_NOW and m.to == 2 for m in c.sent)


def test_transfer_leader_first_catches_up_a_lagging_transferee(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.isolate(3)
    c.propose(1, b"x")
    c.heal()
    c.hold = True
    c[1].transfer_leader(3)
    c.stabilize()
    assert not any(m.type == t.MSG_TIMEOUT_NOW for m in c.queue)
    assert any(m.type == t.MSG_APP and m.to == 3 for m in c.queue)
    c.hold = False
    c.stabilize()
    assert c.leaders() == [3] and c[3].commit_index >= 5


def test_transfer_leader_stops_accepting_proposals_while_transferring(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.isolate(3)
    c[1].transfer_leader(3)
    c.stabilize()
    with pytest.raises(ProposalDropped):
        c[1].propose(b"x")


def test_transfer_leader_aborted_after_an_election_timeout(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.isolate(3)
    c[1].transfer_leader(3)
    c.stabilize()
    c.tick(1, 10)
    assert c.raft(1).lead_transferee == 0
    c[1].propose(b"ok")


def test_transfer_leader_to_learner_is_ignored(cluster):
    c = cluster([1, 2], learners=[3])
    c.elect(1)
    c[1].transfer_leader(3)
    c.stabilize()
    assert c.leaders() == [1] and c.raft(1).lead_transferee == 0


def test_transfer_leader_request_on_follower_is_forwarded(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c[3].transfer_leader(2)
    c.stabilize()
    assert c.leaders() == [2]


# ---------------------------------------------------------------- ReadIndex (§6.4)
def test_read_index_leader_confirms_with_heartbeat_quorum_before_answering(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.hold = True
    c[1].read_index(b"ctx1")
    c.stabilize()
    assert c.members[1].reads == []
    assert {m.to for m in c.queue if m.type == t.MSG_HEARTBEAT and m.context == b"ctx1"} == {2, 3}
    c.hold = False
    c.stabilize()
    assert [(r.index, r.request_ctx) for r in c.members[1].reads] == [(c[1].commit_index, b"ctx1")]


def test_read_index_isolated_leader_never_answers(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.isolate(1)
    c[1].read_index(b"r")
    c.stabilize()
    c.tick(1, 5)
    assert c.members[1].reads == []


def test_read_index_new_leader_waits_for_entry_of_its_term_to_commit():
    rn, st = solo([1, 2, 3])
    rn.campaign()
    drain(rn, st)
    rn.step(msg(t.MSG_VOTE_RESP, 2, term=2))
    drain(rn, st)
    rn.read_index(b"r")
    out = drain(rn, st)
    assert not [m for m in out if m.type == t.MSG_HEARTBEAT and m.context == b"r"]
    rn.step(msg(t.MSG_APP_RESP, 2, term=2, index=4))  # own-term entry commits
    out = drain(rn, st)
    assert [m for m in out if m.type == t.MSG_HEARTBEAT and m.context == b"r"]
    rn.step(msg(t.MSG_HEARTBEAT_RESP, 2, term=2, context=b"r"))
    rd = rn.ready()
    assert [(r.index, r.request_ctx) for r in rd.read_states] == [(4, b"r")]


def test_read_index_on_follower_is_forwarded_to_leader(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.propose(1, b"x")
    c[3].read_index(b"f")
    c.stabilize()
    assert [(r.index, r.request_ctx) for r in c.members[3].reads] == [(c[1].commit_index, b"f")]


def test_read_index_without_leader_is_dropped_with_error():
    rn, _st = solo([1, 2, 3])
    with pytest.raises(ProposalDropped):
        rn.read_index(b"r")


# ---------------------------------------------------------------- proposals
def test_proposal_on_follower_is_forwarded_to_leader(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.propose(2, b"fwd")
    assert c.members[1].applied[-1][2] == b"fwd"


def test_proposal_without_leader_raises_proposal_dropped():
    rn, _st = solo([1, 2, 3])
    with pytest.raises(ProposalDropped):
        rn.propose(b"x")


def test_proposal_forwarding_can_be_disabled(cluster):
    c = cluster([1, 2, 3], disable_proposal_forwarding=True)
    c.elect(1)
    with pytest.raises(ProposalDropped):
        c[2].propose(b"x")


# ---------------------------------------------------------------- replication flow control
def test_progress_moves_from_probe_to_replicate_after_first_ack(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    assert c.raft(1).trk.progress[2].state == REPLICATE


def test_inflight_window_limits_unacked_appends():
    rn, st = make_leader([1, 2, 3], max_inflight_msgs=2)
    drain(rn, st)
    rn.step(msg(t.MSG_APP_RESP, 2, term=2, index=4))
    drain(rn, st)
    for k in range(5):
        rn.propose(b"%d" % k)
        apps = [m for m in drain(rn, st) if m.type == t.MSG_APP and m.to == 2]
        assert len(apps) <= 1
    assert rn.raft.trk.progress[2].inflights.count() == 2 and rn.raft.trk.progress[2].is_paused()


def test_max_size_per_msg_limits_entries_per_append():
    rn, st = make_leader([1, 2], max_size_per_msg=40)
    drain(rn, st)
    rn.step(msg(t.MSG_APP_RESP, 2, term=2, index=3))
    drain(rn, st)
    rn.propose_batch([b"x" * 20] * 6)
    apps = [m for m in drain(rn, st) if m.type == t.MSG_APP and m.to == 2]
    assert apps and all(len(m.entries) <= 2 for m in apps)


def test_proposals_are_batched_into_one_append_per_follower(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.sent.clear()
    for k in range(50):
        c[1].propose(b"%d" % k)
    c.stabilize()
    first = next(m for m in c.sent if m.type == t.MSG_APP and m.to == 2)
    assert len(first.entries) == 50


# ---------------------------------------------------------------- snapshots
def test_snapshot_sent_to_follower_whose_entries_were_compacted(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.isolate(3)
    for k in range(5):
        c.propose(1, b"%d" % k)
    st = c.members[1].storage
    applied = c[1].applied_index
    st.create_snapshot(applied, c.members[1].conf, b"state")
    st.compact(applied)
    c.heal()
    c.tick(1)
    snaps = [m for m in c.sent if m.type == t.MSG_SNAP and m.to == 3]
    assert snaps
    c[1].report_snapshot(3, True)
    c.tick_all(2)
    assert c.members[3].storage.snapshot().metadata.index == applied
    assert c[3].commit_index == c[1].commit_index


def test_snapshot_restore_on_restart_resumes_from_persisted_state(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    for k in range(3):
        c.propose(1, b"%d" % k)
    m2 = c.members[2]
    m2.storage.create_snapshot(m2.rn.applied_index, m2.conf, b"s")
    m2.storage.compact(m2.rn.applied_index)
    before = (c[2].term, c[2].commit_index)
    c.restart(2)
    assert (c[2].term, c[2].commit_index) == before
    assert c[2].conf_state().voters == [1, 2, 3]


def test_follower_ignores_snapshot_older_than_its_commit():
    rn, st = solo([1, 2, 3])
    from kvetch.raft import ConfState, Snapshot, SnapshotMetadata

    rn.step(msg(t.MSG_SNAP, 2, term=2, snapshot=Snapshot(b"", SnapshotMetadata(ConfState([1, 2, 3]), 2, 1))))
    resp = next(m for m in drain(rn, st) if m.type == t.MSG_APP_RESP)
    assert resp.index == 3 and st.snapshot().metadata.index == 0


# ---------------------------------------------------------------- membership
def test_learner_receives_entries_but_never_votes_or_counts_for_quorum(cluster):
    c = cluster([1, 2], learners=[3])
    c.elect(1)
    c.cut.update({(1, 2), (2, 1)})
    commit = c[1].commit_index
    c.propose(1, b"x")
    assert c[1].commit_index == commit  # learner 3's ack is not a quorum
    assert c[3].raft.log.last_index() == c[1].raft.log.last_index()


def test_learner_never_campaigns(cluster):
    c = cluster([1, 2], learners=[3])
    c.elect(1)
    c.isolate(3)
    c.tick(3, 100)
    assert c[3].role == FOLLOWER and c[3].term == c[1].term


def test_learner_vote_requests_are_not_counted(cluster):
    rn, st = solo([1, 2], learners=[3])
    rn.campaign()
    drain(rn, st)
    rn.step(msg(t.MSG_VOTE_RESP, 3, term=2))
    assert rn.role == CANDIDATE


def test_add_learner_then_promote_to_voter(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.add_empty(4)
    c[1].propose_conf_change(ConfChange(type=t.CONF_ADD_LEARNER_NODE, node_id=4))
    c.stabilize()
    c.tick_all(2)
    assert c[1].conf_state().learners == [4]
    assert c[1].is_learner_ready(4)
    c[1].propose_conf_change(ConfChange(type=t.CONF_ADD_NODE, node_id=4))
    c.stabilize()
    assert c[1].conf_state().voters == [1, 2, 3, 4] and c[4].conf_state().voters == [1, 2, 3, 4]


def test_is_learner_ready_requires_match_at_least_90_percent_of_leader(cluster):
    c = cluster([1, 2], learners=[3])
    c.elect(1)
    c.isolate(3)
    for k in range(30):
        c.propose(1, b"%d" % k)
    assert not c[1].is_learner_ready(3)
    c.heal()
    c.tick_all(2)
    assert c[1].is_learner_ready(3)
    with pytest.raises(ProposalDropped):
        c[2].is_learner_ready(3)


def test_only_one_conf_change_pending_at_a_time(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.hold = True
    c[1].propose_conf_change(ConfChange(type=t.CONF_ADD_LEARNER_NODE, node_id=4))
    c[1].propose_conf_change(ConfChange(type=t.CONF_ADD_LEARNER_NODE, node_id=5))
    ents = c.raft(1).log.entries(c.raft(1).log.last_index() - 1, 1 << 30)
    assert [e.type for e in ents] == [t.ENTRY_CONF_CHANGE, t.ENTRY_NORMAL]


def test_new_leader_accepts_no_conf_change_before_applying_earlier_entries():
    rn, _st = make_leader([1, 2, 3])
    assert rn.raft.pending_conf_index == rn.raft.log.last_index() - 1


def test_remove_voter_shrinks_quorum(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c[1].propose_conf_change(ConfChange(type=t.CONF_REMOVE_NODE, node_id=3))
    c.stabilize()
    c.isolate(3)
    c.propose(1, b"two-node")
    assert c.members[2].applied[-1][2] == b"two-node"


def test_removed_leader_hands_leadership_to_a_remaining_voter(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c[1].propose_conf_change(ConfChange(type=t.CONF_REMOVE_NODE, node_id=1))
    c.stabilize()
    c.tick_all(25)
    leaders = [i for i in c.leaders() if i != 1]
    assert len(leaders) == 1 and c[leaders[0]].term > c[1].term
    with pytest.raises(ProposalDropped):
        c[1].propose(b"removed")  # the old leader (at its stale term) takes no proposals
    c.propose(leaders[0], b"after")
    assert c.members[2].applied[-1][2] == b"after"


def test_node_with_unapplied_conf_change_does_not_campaign():
    rn, st = solo([1, 2, 3])
    rn.step(msg(t.MSG_APP, 2, term=2, index=3, log_term=1, commit=4, entries=[
        Entry(2, 4, t.ENTRY_CONF_CHANGE, b"")]))
    rd = rn.ready()  # committed, not yet applied
    st.append(rd.entries)
    rn.campaign()
    assert rn.role == FOLLOWER


# ---------------------------------------------------------------- crash / restart
def test_restart_recovers_term_vote_and_log_from_storage(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c.propose(1, b"x")
    hs = c.members[2].storage.hard_state
    c.restart(2)
    assert (c[2].term, c.raft(2).vote, c[2].commit_index) == (hs.term, hs.vote, hs.commit)
    c.tick_all(2)
    assert [a[2] for a in c.members[2].applied].count(b"x") >= 1


def test_status_exposes_leader_term_indexes_role_and_progress(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    s = c[1].status()
    assert (s.lead, s.raft_state, s.term) == (1, LEADER, 2)
    assert s.commit == s.applied == c[1].commit_index
    assert set(s.progress) == {1, 2, 3} and s.progress[2].match == s.commit
    assert c[2].status().progress == {}


def test_max_uncommitted_entries_size_drops_proposals_over_the_limit(cluster):
    c = cluster([1, 2, 3], max_uncommitted_entries_size=100)
    c.elect(1)
    c.isolate(1)
    c[1].propose(b"x" * 80)
    with pytest.raises(ProposalDropped):
        c[1].propose(b"y" * 80)
    c.heal()
    c.tick_all(2)
    c.propose(1, b"z" * 80)  # committed entries free the budget
    assert c.members[2].applied[-1][2] == b"z" * 80


def test_demoted_leader_hands_over_and_keeps_replicating_as_learner(cluster):
    c = cluster([1, 2, 3])
    c.elect(1)
    c[1].propose_conf_change(ConfChange(type=t.CONF_ADD_LEARNER_NODE, node_id=1))
    c.stabilize()
    c.tick_all(25)
    leader = [i for i in c.leaders() if i != 1]
    assert len(leader) == 1 and c[leader[0]].conf_state().learners == [1]
    c.propose(leader[0], b"after")
    assert c.members[1].applied[-1][2] == b"after"

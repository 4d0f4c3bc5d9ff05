import threading

import pytest

from core.requests import Txt2ImgRequest
from studio.jobs import Job
from studio.queue import FairQueue, QueueFull


def _job(user: str, n: int) -> Job:
    return Job(request=Txt2ImgRequest(prompt=f"{user}{n}"), user=user)


def test_round_robin_across_users_fifo_within_a_user():
    q = FairQueue(max_size=10)
    a1, a2, a3, b1, c1, b2 = (
        _job("a", 1),
        _job("a", 2),
        _job("a", 3),
        _job("b", 1),
        _job("c", 1),
        _job("b", 2),
    )
    for job in (a1, a2, a3, b1, c1, b2):
        q.put(job)
    assert [q.position(j) for j in (a1, b1, c1, a2, b2, a3)] == [1, 2, 3, 4, 5, 6]
    taken = [q.get(timeout=0) for _ in range(6)]
    assert taken == [a1, b1, c1, a2, b2, a3]
    assert q.get(timeout=0) is None


def test_a_user_who_just_ran_goes_to_the_back():
    q = FairQueue(max_size=10)
    a1, a2, b1 = _job("a", 1), _job("a", 2), _job("b", 1)
    q.put(a1)
    q.put(a2)
    assert q.get(timeout=0) is a1
    q.put(b1)
    assert q.get(timeout=0) is b1
    assert q.get(timeout=0) is a2


def test_queue_full_has_a_clear_message():
    q = FairQueue(max_size=2)
    q.put(_job("a", 1))
    q.put(_job("b", 1))
    with pytest.raises(QueueFull, match="queue is full"):
        q.put(_job("c", 1))


def test_remove_and_close_wake_a_waiting_worker():
    q = FairQueue(max_size=2)
    job = _job("a", 1)
    q.put(job)
    assert q.remove(job) and not q.remove(job)
    result = []
    waiter = threading.Thread(target=lambda: result.append(q.get(timeout=5)))
    waiter.start()
    q.close()
    waiter.join(2)
    assert result == [None]

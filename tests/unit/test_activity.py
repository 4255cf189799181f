"""The agent's activity: pulls are answered only while someone used the PC recently."""

from peer_agent.beaming import Activity


def test_goes_inactive_once_after_the_idle_time_and_wakes_on_use():
    activity = Activity(idle_timeout=7200, now=0.0)
    assert activity.active
    assert not activity.check(7199.9)
    assert activity.check(7200.0)  # exactly once...
    assert not activity.check(9000.0)
    assert not activity.active
    assert activity.use(9001.0) is True  # ...and a local action wakes it
    assert activity.active and not activity.check(9001.0 + 7199)
    assert activity.use(9002.0) is False  # already awake


def test_use_postpones_the_deadline():
    activity = Activity(idle_timeout=10, now=0.0)
    activity.use(8.0)
    assert not activity.check(17.9)
    assert activity.check(18.0)

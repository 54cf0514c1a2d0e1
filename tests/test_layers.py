from tests.check_layers import violations


def test_dependencies_point_inward() -> None:
    assert violations() == []

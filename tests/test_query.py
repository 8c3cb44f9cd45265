from __future__ import annotations

import pytest

from diplosearch.query import focus


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        (
            "what was said about the China-Kyrgyzstan-Uzbekistan railway",
            "the China-Kyrgyzstan-Uzbekistan railway",
        ),
        ("What has been agreed on vaccines?", "vaccines"),
        ("tell me about the Luban Workshop", "the Luban Workshop"),
        ("statements on the SCO", "the SCO"),
        ("Which statements were made about Taiwan", "Taiwan"),
        ("what did Xi say about the railway", "what did Xi say about the railway"),
        ("  railway  ", "railway"),
        ("what about it", "what about it"),
    ],
)
def test_only_impersonal_frames_are_dropped(question, topic):
    assert focus(question) == topic

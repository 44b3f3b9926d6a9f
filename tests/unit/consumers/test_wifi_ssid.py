"""Labelled Wi-Fi network names are location-grade data and leave free text."""

from __future__ import annotations

import pytest

from consumers.scrub import scrub


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wifi connected: SSID=Guojia BSSID=x", "wifi connected: SSID=<WIFI_SSID> BSSID=x"),
        ('ssid: "Zhang 5G" joined', 'ssid: "<WIFI_SSID>" joined'),
        ("network_name='Flat 1203'", "network_name='<WIFI_SSID>'"),
        ("Wi-Fi: CMCC-8A2F", "Wi-Fi: <WIFI_SSID>"),
    ],
)
def test_labelled_ssid_is_replaced_and_the_label_kept(text: str, expected: str) -> None:
    assert scrub(text).text == expected


@pytest.mark.parametrize("text", ["wifi=on", "wifi: off", "ssid=null", "wifi signal -60 dBm"])
def test_switch_states_and_unlabelled_words_are_not_ssids(text: str) -> None:
    assert scrub(text).text == text

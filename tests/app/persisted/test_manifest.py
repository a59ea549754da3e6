"""Trusted manifests: Apollo's and Relay's formats, every document reachable by the SHA-256 of
its text and by its own id, and a file that cannot be trusted refused with its reason."""

from __future__ import annotations

import hashlib
import json

import pytest

from app.persisted import ManifestError, load_manifest, sha256_id

DOC = "{ products { name } }"
SHA = hashlib.sha256(DOC.encode()).hexdigest()


def test_an_apollo_manifest_maps_each_sha256_id_to_its_body(tmp_path):
    path = tmp_path / "m.json"
    operation = {"id": SHA.upper(), "body": DOC, "name": "P", "type": "query"}
    path.write_text(
        json.dumps(
            {"format": "apollo-persisted-query-manifest", "version": 1, "operations": [operation]}
        )
    )
    assert load_manifest(path) == {f"sha256:{SHA}": DOC}


def test_a_relay_manifest_keeps_custom_ids_and_adds_the_sha256_of_each_text(tmp_path):
    path = tmp_path / "relay.json"
    path.write_text(json.dumps({"abc123": DOC, SHA: DOC}))
    assert load_manifest(path) == {"abc123": DOC, sha256_id(DOC): DOC}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "neither Apollo"),
        (json.dumps({"x:y": DOC}), "holds a colon"),
        (
            json.dumps({"format": "apollo-persisted-query-manifest", "version": 2}),
            "only version 1",
        ),
    ],
)
def test_a_manifest_that_cannot_be_trusted_is_refused_saying_why(tmp_path, content, reason):
    path = tmp_path / "m.json"
    path.write_text(content)
    with pytest.raises(ManifestError, match=reason):
        load_manifest(path)


def test_a_missing_manifest_names_its_path(tmp_path):
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        load_manifest(tmp_path / "nope.json")

"""What the local broker runs: the official Kafka jars and a java to run them.

The jars are those of deploy/kafka/pom.xml, copied by Maven once into a cache outside
the repository (`$CONSENTGATE_CACHE` or `~/.cache/consentgate`), one folder per Kafka
version and pom (`ensure_jars`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from ingest.errors import BrokerError

REPO_ROOT = Path(__file__).resolve().parents[2]
POM_PATH = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
_MARKER = ".complete"


def default_cache_dir() -> Path:
    """The jar cache outside the repo: `$CONSENTGATE_CACHE` or `~/.cache/consentgate`."""
    env = os.environ.get("CONSENTGATE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "consentgate"


def kafka_version(pom: Path = POM_PATH) -> str:
    """The `kafka.version` property of the broker pom."""
    try:
        root = ET.parse(pom).getroot()
    except (OSError, ET.ParseError) as exc:
        raise BrokerError(f"cannot read the Kafka pom {pom}: {exc}") from exc
    for elem in root.iter():
        if elem.tag.rsplit("}", 1)[-1] == "kafka.version" and elem.text and elem.text.strip():
            return elem.text.strip()
    raise BrokerError(f"no <kafka.version> property in {pom}")


def pom_digest(pom: Path = POM_PATH) -> str:
    """What the jars depend on: the pom's elements, its comments left out (a comment edit
    fetches nothing)."""
    try:
        root = ET.parse(pom).getroot()  # the default parser drops comments
    except (OSError, ET.ParseError) as exc:
        raise BrokerError(f"cannot read the Kafka pom {pom}: {exc}") from exc
    return hashlib.sha256(ET.tostring(root)).hexdigest()


def ensure_jars(cache_dir: Path | None = None) -> Path:
    """Copy the broker's runtime jars into the cache once (Maven) and return their folder.

    Each pom gets its own folder (`lib-<digest>`), filled under a temporary name and
    renamed when complete, and never removed while this code runs: checkouts of two
    poms share the cache without pulling the jars from under each other's brokers.
    """
    if not POM_PATH.is_file():
        raise BrokerError(
            f"Kafka pom not found at {POM_PATH}: the local broker runs from a source checkout"
        )
    version = kafka_version(POM_PATH)
    home = (cache_dir or default_cache_dir()) / f"kafka-{version}"
    name = f"lib-{pom_digest(POM_PATH)[:16]}"
    lib, marker = home / name, home / f"{name}{_MARKER}"
    if marker.is_file() and lib.is_dir():
        return lib
    home.mkdir(parents=True, exist_ok=True)
    with (home.parent / f"kafka-{version}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent first runs fetch once; freed on close
        if marker.is_file() and lib.is_dir():
            return lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError("mvn not found: install Maven 3.8+ to fetch the Kafka jars")
        # Without its marker no caller was given this folder: a crash left it half made.
        shutil.rmtree(lib, ignore_errors=True)
        filling = home / f"{name}.filling-{os.getpid()}"
        shutil.rmtree(filling, ignore_errors=True)
        cmd = [
            mvn, "-q", "-B", "-Dstyle.color=never", "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={filling}", "-f", str(POM_PATH),
        ]  # fmt: skip
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(filling, ignore_errors=True)
            raise BrokerError("Maven did not finish fetching the Kafka jars in 900 s") from exc
        if done.returncode != 0 or not any(filling.glob("kafka_*.jar")):
            shutil.rmtree(filling, ignore_errors=True)
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise BrokerError(f"Maven could not fetch Kafka {version} jars:\n{tail}")
        filling.rename(lib)
        marker.write_text(name + "\n")
    return lib


def find_java() -> str:
    """The `java` executable: `$JAVA_HOME/bin/java` or the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise BrokerError("java not found: install a JDK 17+")
    return found

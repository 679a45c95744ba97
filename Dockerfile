# Warden in a container: Debian bookworm, Debian's Chromium, a non-root user with Chromium's own
# sandbox ON (Warden turns it on for non-root users). Chromium's sandbox needs user namespaces:
# run with `--security-opt seccomp=unconfined` (or a seccomp profile that allows clone/unshare),
# e.g.  docker run --rm --security-opt seccomp=unconfined -v "$PWD/evidence:/evidence" warden demo
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/warden
COPY pyproject.toml README.md ./
COPY runner ./runner
COPY guards ./guards
COPY evidence ./evidence
COPY missions ./missions
COPY kernel ./kernel
RUN pip install --no-cache-dir . \
 && useradd --create-home --uid 10001 warden \
 && mkdir -p /evidence && chown warden:warden /evidence

ENV WARDEN_CHROMIUM=/usr/lib/chromium/chromium \
    WARDEN_EVIDENCE_DIR=/evidence \
    TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="" \
    PYTHONDONTWRITEBYTECODE=1
USER warden
WORKDIR /home/warden
ENTRYPOINT ["warden"]
CMD ["--help"]

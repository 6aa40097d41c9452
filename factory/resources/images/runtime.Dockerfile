# Slim runtime image: the base image pinned by digest, plus the target's wheels.
# Stage 1 installs from the wheelhouse only (no index, hashes required) into a venv,
# running pip from its wheel so that pip itself never lands in the image, and lays out
# the one layer stage 2 adds under /layer, made reproducible:
# - pycs are checked-hash (PEP 552): valid whatever the files' mtimes, and bit-identical
#   from build to build, unlike the timestamp-based ones pip would write;
# - every mtime is SOURCE_DATE_EPOCH (the base image's created time, set by factory), so
#   the layer tar the engine makes from it is the same on every build.
ARG BASE
FROM ${BASE} AS install
ARG UID=10001
ARG SOURCE_DATE_EPOCH
COPY pip.whl /tmp/factory/pip.whl
COPY requirements.lock /tmp/factory/requirements.lock
COPY wheels/ /tmp/factory/wheels/
RUN test -n "${SOURCE_DATE_EPOCH}" \
 && python3 -m venv --without-pip /opt/venv \
 && /opt/venv/bin/python /tmp/factory/pip.whl/pip install \
      --no-index --find-links /tmp/factory/wheels --require-hashes --only-binary :all: \
      --no-cache-dir --disable-pip-version-check --root-user-action ignore --no-compile \
      -r /tmp/factory/requirements.lock \
 && { PYTHONHASHSEED=0 /opt/venv/bin/python -m compileall -qq -j 0 --invalidation-mode checked-hash /opt/venv/lib \
      || echo "note: some files did not byte-compile (pip leaves those uncompiled too)"; } \
 && mkdir -p /layer/etc /layer/opt \
 && mv /opt/venv /layer/opt/venv \
 && cp -p /etc/passwd /etc/group /layer/etc/ \
 && echo "app:x:${UID}:${UID}:app:/nonexistent:/usr/sbin/nologin" >> /layer/etc/passwd \
 && echo "app:x:${UID}:" >> /layer/etc/group \
 && find /layer -exec touch -h -d "@${SOURCE_DATE_EPOCH}" {} +

# Stage 2: the base plus one layer (the venv, the app user); no wheels, no pip.
FROM ${BASE}
ARG UID=10001
COPY --from=install /layer/ /
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8
USER ${UID}:${UID}
WORKDIR /tmp
CMD ["python3"]

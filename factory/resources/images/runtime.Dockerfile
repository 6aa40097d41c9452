# Slim runtime image: the base image pinned by digest, plus the target's wheels.
# The bootstrapped base has no shell, so every RUN is in exec form. Stage 1
# (install_venv.py, run by the base's python3) installs from the wheelhouse only (no index, hashes required) into a venv,
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
COPY install_venv.py /tmp/factory/install_venv.py
COPY pip.whl /tmp/factory/pip.whl
COPY requirements.lock /tmp/factory/requirements.lock
COPY wheels/ /tmp/factory/wheels/
RUN ["python3", "/tmp/factory/install_venv.py"]

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

# Slim runtime image: the base image pinned by digest, plus the target's wheels.
# Stage 1 installs from the wheelhouse only (no index, hashes required) into a venv,
# running pip from its wheel so that pip itself never lands in the image.
ARG BASE
FROM ${BASE} AS install
COPY pip.whl /tmp/factory/pip.whl
COPY requirements.lock /tmp/factory/requirements.lock
COPY wheels/ /tmp/factory/wheels/
RUN python3 -m venv --without-pip /opt/venv \
 && /opt/venv/bin/python /tmp/factory/pip.whl/pip install \
      --no-index --find-links /tmp/factory/wheels --require-hashes --only-binary :all: \
      --no-cache-dir --disable-pip-version-check --root-user-action ignore \
      -r /tmp/factory/requirements.lock

# Stage 2: the base plus the venv; no wheels, no pip, no build leftovers.
FROM ${BASE}
ARG UID=10001
COPY --from=install /opt/venv /opt/venv
RUN echo "app:x:${UID}:${UID}:app:/nonexistent:/usr/sbin/nologin" >> /etc/passwd \
 && echo "app:x:${UID}:" >> /etc/group
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8
USER ${UID}:${UID}
WORKDIR /tmp
CMD ["python3"]

# Builder image: the bootstrapped forky rootfs laid out as cibuildwheel expects a
# manylinux/musllinux image (see ../shared/ENVIRONMENT.md, "cibuildwheel with a locally
# built image"): /opt/python/cp314-cp314 with pip and build, a cp39 utility interpreter,
# auditwheel on PATH. The compiler (zig) is mounted at build time, not baked in.
FROM scratch
ADD rootfs.tar /
ARG TRIPLET
ARG PIP_WHEEL
COPY tools/ /tmp/factory/tools/
RUN python3.14 -m venv --without-pip /opt/python/cp314-cp314 \
 && /opt/python/cp314-cp314/bin/python /tmp/factory/tools/${PIP_WHEEL}/pip install \
      --no-index --find-links /tmp/factory/tools --require-hashes --only-binary :all: \
      --no-cache-dir --disable-pip-version-check --root-user-action ignore \
      -r /tmp/factory/tools/requirements.txt \
 && mkdir -p /opt/python/cp39-cp39/bin \
 && ln -s /opt/python/cp314-cp314/bin/python /opt/python/cp39-cp39/bin/python \
 && ln -s /opt/python/cp314-cp314/bin/auditwheel /usr/local/bin/auditwheel \
 && mkdir -p /opt/factory/pyinc/${TRIPLET} \
 && ln -s /usr/include/${TRIPLET}/python3.14 /opt/factory/pyinc/${TRIPLET}/python3.14 \
 && rm -rf /tmp/factory
ENV LANG=C.UTF-8
CMD ["/bin/bash"]

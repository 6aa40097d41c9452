# factory's runtime image, assembled without running anything of the target arch: the venv
# layer (layer/opt/venv, layer/etc/passwd, layer/etc/group) is prepared on the host by
# factory/hostlayer.py (pypa/installer, pycs compiled by the native CPython of the same
# base recipe), so this build only copies it over the base. See README "images".
ARG BASE
FROM ${BASE}
ARG UID=10001
COPY layer/ /
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8
USER ${UID}:${UID}
WORKDIR /tmp
CMD ["python3"]

"""Offline stand-in for @rules_cc//cc:defs.bzl, for Bazel 4.2.3 (Debian's bazel-bootstrap).

Bazel's own tools (@bazel_tools) load these names from @rules_cc, which Bazel would download;
Debian's bazel-rules-cc needs a newer Bazel. This repository has no C++ code, so the names only
have to exist: each forwards to the rule built into Bazel 4, as rules_cc 0.0.1 did.
"""

def cc_binary(**attrs):
    native.cc_binary(**attrs)

def cc_import(**attrs):
    native.cc_import(**attrs)

def cc_library(**attrs):
    native.cc_library(**attrs)

def cc_proto_library(**attrs):
    native.cc_proto_library(**attrs)

def cc_test(**attrs):
    native.cc_test(**attrs)

def cc_toolchain(**attrs):
    native.cc_toolchain(**attrs)

def cc_toolchain_suite(**attrs):
    native.cc_toolchain_suite(**attrs)

def fdo_prefetch_hints(**attrs):
    native.fdo_prefetch_hints(**attrs)

def fdo_profile(**attrs):
    native.fdo_profile(**attrs)

def objc_import(**attrs):
    native.objc_import(**attrs)

def objc_library(**attrs):
    native.objc_library(**attrs)

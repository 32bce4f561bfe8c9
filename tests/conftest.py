"""Test-suite setup: the shared strategies module importable as ``strategies``. (Threads need nothing here:
minibnn's own policy, minibnn.threads, already keeps BLAS to one thread and the kernels from spinning.)"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

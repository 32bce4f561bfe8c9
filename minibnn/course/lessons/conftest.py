"""The lessons are notebooks, not modules: pytest must not import them (``--doctest-modules`` would run them).

tests/test_lessons.py runs each one as a script and as an executed notebook instead. (Not shipped: setup.py's
package_data takes only the NN_name.py lessons and the README from this folder.)
"""
collect_ignore_glob = ["[0-9][0-9]_*.py"]

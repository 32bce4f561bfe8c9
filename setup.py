"""Build script for minibnn: the pure-Python package plus the XNOR-popcount extension built from kernels/."""
from setuptools import find_packages, setup

setup(
    name="minibnn",
    version="0.1.0",
    description="A from-scratch NumPy engine for binary neural networks, with XNOR-popcount kernels",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["minibnn", "minibnn.*"]),
    package_data={"minibnn": ["datasets/*.npz"]},
    install_requires=["numpy>=2.0", "scipy>=1.9", "tqdm>=4.60"],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6.80", "matplotlib>=3.5", "jupytext>=1.14"],
        "plot": ["matplotlib>=3.5"],
    },
    entry_points={"console_scripts": ["minibnn=minibnn.cli:main"]},
)

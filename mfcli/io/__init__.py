"""Reading and writing: data files into Datasets, Results to HDF5, arrays to any format."""

from mfcli.io.load import describe_file, load_dataset, parse_spec
from mfcli.io.result import read_result, write_result
from mfcli.io.write import write_array, write_dataset

__all__ = ["describe_file", "load_dataset", "parse_spec", "read_result", "write_result",
           "write_array", "write_dataset"]

"""Reading NumPy files (.npy, .npz) that may be truncated or corrupt."""
import tokenize
import zipfile
import zlib

# What np.load raises on a damaged file: OSError, ValueError and EOFError for a truncated or foreign
# file; zipfile's errors for a damaged .npz directory (BadZipFile; NotImplementedError for an unknown
# compression method or flag; RuntimeError for the "encrypted" flag); zlib.error for damaged compressed
# data; tokenize.TokenError and SyntaxError for a damaged .npy header.
NUMPY_FILE_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, tokenize.TokenError,
                     SyntaxError, NotImplementedError, RuntimeError)

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # numba's parallel kernels (used by the data pipeline) leave spinning worker threads that slow
    # torch 30x on a busy 2-core machine; tiny nets are fastest single-threaded anyway
    import numba

    nb = numba.get_num_threads()
    numba.set_num_threads(1)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
    numba.set_num_threads(nb)

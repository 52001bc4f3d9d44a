import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # these tiny networks are dominated by thread synchronisation on a busy 2-core machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

"""One torch thread in these tests: the CI machine is shared, and oversubscribed threads are ~10x slower."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

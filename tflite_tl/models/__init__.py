"""Model zoo: functional tf-keras CNNs for on-device transfer learning."""
from tflite_tl.models.proxyless import proxyless_mobile

// A plugin execution provider library for the tests of exec/ort: it calls
// itself CUDAExecutionProvider and offers two virtual NVIDIA GPUs, listed
// in the order device_id 1, then 0 (as the CUDA provider's factory
// numbers GPUs, in its EP options), so that the tests can follow the whole
// plugin route of appendCUDA (RegisterExecutionProviderLibrary,
// GetEpDevices, SessionOptionsAppendExecutionProvider_V2) on a machine
// with no GPU. Its CreateEp fails, with a message that says which
// hardware device and which device_id option ONNX Runtime gave it.
//
// Built by the tests: cc -shared -fPIC -I../include fake_cuda_ep.c.

#include <stdio.h>
#include <string.h>

#include "onnxruntime_c_api.h"

#define NDEV 2

typedef struct {
  OrtEpFactory base;
  OrtHardwareDevice *hw[NDEV];
} FakeFactory;

static const OrtApi *api;
static const OrtEpApi *ep_api;
static FakeFactory fake;

static const char *ORT_API_CALL GetName(const OrtEpFactory *f) {
  (void)f;
  return "CUDAExecutionProvider";
}

static const char *ORT_API_CALL GetVendor(const OrtEpFactory *f) {
  (void)f;
  return "vdpp test";
}

static OrtStatus *ORT_API_CALL GetSupportedDevices(OrtEpFactory *f, const OrtHardwareDevice *const *devices,
                                                   size_t num_devices, OrtEpDevice **ep_devices,
                                                   size_t max_ep_devices, size_t *num_ep_devices) {
  FakeFactory *ff = (FakeFactory *)f;
  (void)devices;
  (void)num_devices;
  size_t n = 0;
  for (int id = NDEV - 1; id >= 0 && n < max_ep_devices; id--) {
    OrtStatus *s;
    if (!ff->hw[id]) {
      s = ep_api->CreateHardwareDevice(OrtHardwareDeviceType_GPU, 0x10de, 0x2330 + (uint32_t)id, "NVIDIA", NULL,
                                       &ff->hw[id]);
      if (s) return s;
    }
    OrtKeyValuePairs *opts = NULL;
    api->CreateKeyValuePairs(&opts);
    char v[16];
    snprintf(v, sizeof v, "%d", id);
    api->AddKeyValuePair(opts, "device_id", v);
    OrtEpDevice *d = NULL;
    s = ep_api->CreateEpDevice(f, ff->hw[id], NULL, opts, &d);
    api->ReleaseKeyValuePairs(opts);
    if (s) return s;
    ep_devices[n++] = d;
  }
  *num_ep_devices = n;
  return NULL;
}

static OrtStatus *ORT_API_CALL CreateEp(OrtEpFactory *f, const OrtHardwareDevice *const *devices,
                                        const OrtKeyValuePairs *const *ep_metadata, size_t num_devices,
                                        const OrtSessionOptions *so, const OrtLogger *logger, OrtEp **ep) {
  (void)f;
  (void)ep_metadata;
  (void)logger;
  *ep = NULL;
  // The provider options ONNX Runtime put in the session config: under
  // "ep.<provider name in lower case>." (1.24), or "ep.cuda." for the CUDA
  // provider (1.29).
  static const char *const keys[] = {"ep.cudaexecutionprovider.device_id", "ep.cuda.device_id"};
  char id[64] = "unset";
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    int has = 0;
    OrtStatus *s = api->HasSessionConfigEntry(so, keys[i], &has);
    if (s) return s;
    if (has) {
      size_t size = sizeof id;
      s = api->GetSessionConfigEntry(so, keys[i], id, &size);
      if (s) return s;
      break;
    }
  }
  char msg[256];
  snprintf(msg, sizeof msg, "fake CUDA EP: CreateEp on %zu device(s), hardware device 0x%x, option device_id=%s",
           num_devices, num_devices > 0 ? api->HardwareDevice_DeviceId(devices[0]) : 0u, id);
  return api->CreateStatus(ORT_NOT_IMPLEMENTED, msg);
}

static void ORT_API_CALL ReleaseEp(OrtEpFactory *f, OrtEp *ep) {
  (void)f;
  (void)ep;
}

// The members of versions 23 and 24, which ONNX Runtime may call: none
// of them does anything.
static uint32_t ORT_API_CALL GetVendorId(const OrtEpFactory *f) {
  (void)f;
  return 0;
}

static const char *ORT_API_CALL GetVersion(const OrtEpFactory *f) {
  (void)f;
  return "0.0.1";
}

static OrtStatus *ORT_API_CALL ValidateCompiledModelCompatibilityInfo(OrtEpFactory *f,
                                                                      const OrtHardwareDevice *const *devices,
                                                                      size_t num_devices, const char *info,
                                                                      OrtCompiledModelCompatibility *out) {
  (void)f;
  (void)devices;
  (void)num_devices;
  (void)info;
  *out = OrtCompiledModelCompatibility_EP_NOT_APPLICABLE;
  return NULL;
}

static OrtStatus *ORT_API_CALL CreateAllocator(OrtEpFactory *f, const OrtMemoryInfo *info,
                                               const OrtKeyValuePairs *options, OrtAllocator **allocator) {
  (void)f;
  (void)info;
  (void)options;
  *allocator = NULL;
  return NULL;
}

static void ORT_API_CALL ReleaseAllocator(OrtEpFactory *f, OrtAllocator *allocator) {
  (void)f;
  (void)allocator;
}

static OrtStatus *ORT_API_CALL CreateDataTransfer(OrtEpFactory *f, OrtDataTransferImpl **out) {
  (void)f;
  *out = NULL;
  return NULL;
}

static bool ORT_API_CALL IsStreamAware(const OrtEpFactory *f) {
  (void)f;
  return false;
}

static OrtStatus *ORT_API_CALL CreateSyncStreamForDevice(OrtEpFactory *f, const OrtMemoryDevice *device,
                                                         const OrtKeyValuePairs *options, OrtSyncStreamImpl **out) {
  (void)f;
  (void)device;
  (void)options;
  *out = NULL;
  return NULL;
}

static OrtStatus *ORT_API_CALL GetHardwareDeviceIncompatibilityDetails(OrtEpFactory *f, const OrtHardwareDevice *hw,
                                                                       OrtDeviceEpIncompatibilityDetails *details) {
  (void)f;
  (void)hw;
  (void)details;
  return NULL;
}

static OrtStatus *ORT_API_CALL CreateExternalResourceImporterForDevice(OrtEpFactory *f, const OrtEpDevice *d,
                                                                       OrtExternalResourceImporterImpl **out) {
  (void)f;
  (void)d;
  *out = NULL;
  return NULL;
}

static OrtStatus *ORT_API_CALL GetNumCustomOpDomains(OrtEpFactory *f, size_t *n) {
  (void)f;
  *n = 0;
  return NULL;
}

static OrtStatus *ORT_API_CALL GetCustomOpDomains(OrtEpFactory *f, OrtCustomOpDomain **domains, size_t n) {
  (void)f;
  (void)domains;
  (void)n;
  return NULL;
}

OrtStatus *CreateEpFactories(const char *registered_name, const OrtApiBase *base, const OrtLogger *logger,
                             OrtEpFactory **factories, size_t max_factories, size_t *num_factories) {
  (void)registered_name;
  (void)logger;
  *num_factories = 0;
  api = base->GetApi(ORT_API_VERSION);
  if (!api) return NULL;  // no status to report it with: ORT sees no factory
  ep_api = api->GetEpApi();
  if (max_factories < 1) return api->CreateStatus(ORT_INVALID_ARGUMENT, "fake CUDA EP: no room for a factory");
  memset(&fake, 0, sizeof fake);
  fake.base.ort_version_supported = ORT_API_VERSION;  // 24: the members below
  fake.base.GetName = GetName;
  fake.base.GetVendor = GetVendor;
  fake.base.GetSupportedDevices = GetSupportedDevices;
  fake.base.CreateEp = CreateEp;
  fake.base.ReleaseEp = ReleaseEp;
  fake.base.GetVendorId = GetVendorId;
  fake.base.GetVersion = GetVersion;
  fake.base.ValidateCompiledModelCompatibilityInfo = ValidateCompiledModelCompatibilityInfo;
  fake.base.CreateAllocator = CreateAllocator;
  fake.base.ReleaseAllocator = ReleaseAllocator;
  fake.base.CreateDataTransfer = CreateDataTransfer;
  fake.base.IsStreamAware = IsStreamAware;
  fake.base.CreateSyncStreamForDevice = CreateSyncStreamForDevice;
  fake.base.GetHardwareDeviceIncompatibilityDetails = GetHardwareDeviceIncompatibilityDetails;
  fake.base.CreateExternalResourceImporterForDevice = CreateExternalResourceImporterForDevice;
  fake.base.GetNumCustomOpDomains = GetNumCustomOpDomains;
  fake.base.GetCustomOpDomains = GetCustomOpDomains;
  factories[0] = &fake.base;
  *num_factories = 1;
  return NULL;
}

OrtStatus *ReleaseEpFactory(OrtEpFactory *f) {
  FakeFactory *ff = (FakeFactory *)f;
  for (int i = 0; i < NDEV; i++) {
    if (ff->hw[i]) ep_api->ReleaseHardwareDevice(ff->hw[i]);
    ff->hw[i] = NULL;
  }
  return NULL;
}

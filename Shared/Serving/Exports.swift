// Code that runs services or talks to them uses the backend seam's types (ServingError,
// BackendSet, ModelRegistry) too.
@_exported import Backends

// Compiles the shared precompiled header (framework/pch/pch.h).

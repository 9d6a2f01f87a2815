package bridge

// For the external tests (package bridge_test).
var SetConfig = setConfig

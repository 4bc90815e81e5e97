// The XML-RPC codec lives in the wire module beneath SMCore and Toolstack; SMCore's users
// (drivers, commands, tests) see it through SMCore as before.
@_exported import XenAPIWire

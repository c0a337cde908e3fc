// Package dict is the bridge's small built-in dictionary of RADIUS reply
// attributes: those an operator names in bridge.yaml
// (radius.clients[].reply) to tell a VPN concentrator, firewall or Wi-Fi
// controller what a user may do (Filter-Id, Class, Session-Timeout,
// Cisco-AVPair, Fortinet-Group-Name, ...).
//
// The config package checks every configured attribute with Parse (a name
// from the dictionary) or ParseVendor (a vendor attribute the dictionary
// lacks, given as vendor id, type and format) when the file is loaded;
// cmd/bridge turns the config into Values once, at start; the RADIUS server
// adds Value.AVP to each Access-Accept. Nothing is parsed per request.
//
// Values are written as text and encoded per the attribute's format:
//
//   - string: UTF-8 text of 1 to 253 bytes (247 in a vendor attribute),
//     without NUL bytes;
//   - integer: a decimal number from 0 to 4294967295, or for attributes with
//     well-known values (Service-Type, Framed-Protocol) their names, such as
//     Framed-User or PPP, in any case;
//   - ipaddr: an IPv4 address (Framed-IP-Netmask: a netmask);
//   - octets: hex, with or without 0x; Class also takes text, and reads a
//     value as hex only when it starts with 0x.
//
// Names are matched without regard to case. The encoding is layeh.com/radius's.
package dict

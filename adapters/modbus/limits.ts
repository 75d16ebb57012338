// Limits from the Modbus Application Protocol Specification V1.1b3. Shared by
// the TCP and RTU adapters: both carry the same PDU, so the same caps apply.

/** FC3/FC4 "Quantity of Registers": 1 to 125 (0x7D), so a response fits one 253-byte PDU. */
export const MODBUS_MAX_READ_REGISTERS = 125;

/** FC1/FC2 "Quantity of coils/inputs": 1 to 2000 (0x7D0). */
export const MODBUS_MAX_READ_BITS = 2000;

/** PDU addresses are 16 bits: 0x0000 to 0xFFFF. */
export const MODBUS_ADDRESS_SPACE = 65536;

// dla_requant: the DLA requantizer, int32 accumulator -> int8 (or int16), bit-exact with dla.arith.
//
//   q = satN( RoundingDivideByPOT( SRDHM( sat32(acc << left), m ), right ) )
//   N = 16 when OUT_W = 16 and out_wide, else 8 (the layer's output width, chosen per sample)
//   left = max(shift, 0), right = max(-shift, 0)            (TFLite: shift > 0 is a left shift)
//   (m, shift) = (neg_mult, neg_shift) when leaky_en and acc < 0, else (mult, shift)
//
// Python model: dla.arith.multiply_by_quantized_multiplier(acc, m, shift, bits=MULT_W,
// rounding="half_away", left_shift_overflow="saturate") followed by dla.arith.saturate(., N);
// the fused LeakyReLU of dla.requant.apply_select.  Interface and timing: docs/rtl.md.
//
// LATENCY = 3 cycles, fixed, fully pipelined (one result per cycle, no back-pressure):
// a sample presented with valid_in = 1 in cycle n appears on q with valid_out = 1 in cycle
// n + 3.  It must equal HardwareConfig.requant_latency; the test reads it back from the DUT.
//   stage 1: operand select (leaky), left shift saturating to int32
//   stage 2: SaturatingRoundingDoublingHighMul (the MULT_W x 32 multiply)
//   stage 3: RoundingDivideByPOT (ties away from zero), saturation to int8 / int16
//
// Verilog-2005, synthesizable (the initial block holds elaboration checks only).
`default_nettype none

module dla_requant #(
    parameter integer ACC_W  = 32,  // accumulator width (HardwareConfig.acc_bits), 8..32; sign-extended to int32
    parameter integer MULT_W = 32,  // multiplier width (HardwareConfig.multiplier_bits), 2..32: Q0.(MULT_W-1)
    parameter integer OUT_W  = 8    // result width, 8 or 16: 16 adds int16 outputs (out_wide)
) (
    input  wire                     clk,
    input  wire                     rst,        // synchronous, active high: clears the valid pipeline
    input  wire                     valid_in,   // acc/mult/shift/neg_* are sampled when high
    input  wire signed [ACC_W-1:0]  acc,        // accumulator
    input  wire signed [MULT_W-1:0] mult,       // M0, Q0.(MULT_W-1); the contract is 0 <= M0 < 2^(MULT_W-1)
    input  wire signed [5:0]        shift,      // TFLite shift, -32..31, positive = left
    input  wire                     leaky_en,   // fused LeakyReLU: acc < 0 uses neg_mult/neg_shift
    input  wire signed [MULT_W-1:0] neg_mult,   // M0 of alpha*M
    input  wire signed [5:0]        neg_shift,  // shift of alpha*M
    input  wire                     out_wide,   // OUT_W = 16: saturate to int16 (else int8); ignored when OUT_W = 8
    output reg                      valid_out,
    output reg  signed [OUT_W-1:0]  q           // saturated result (int8 sign-extended to OUT_W unless out_wide), meaningful when valid_out
);

    // Pipeline depth, read back by the test bench (not a port, cannot be overridden).
    /* verilator lint_off UNUSEDPARAM */
    localparam integer LATENCY = 3;
    /* verilator lint_on UNUSEDPARAM */

    localparam signed [31:0] INT32_MIN = 32'sh8000_0000;
    localparam signed [31:0] INT32_MAX = 32'sh7fff_ffff;
    localparam integer PROD_W = 32 + MULT_W;  // exact width of the signed int32 x MULT_W product

    // Elaboration checks (ignored by synthesis).
    initial begin
        if (ACC_W < 8 || ACC_W > 32) begin
            $display("ERROR: dla_requant: ACC_W=%0d is outside 8..32", ACC_W);
            $finish;
        end
        if (MULT_W < 2 || MULT_W > 32) begin
            $display("ERROR: dla_requant: MULT_W=%0d is outside 2..32", MULT_W);
            $finish;
        end
        if (OUT_W != 8 && OUT_W != 16) begin
            $display("ERROR: dla_requant: OUT_W=%0d is not 8 or 16", OUT_W);
            $finish;
        end
    end

    // ------------------------------------------------------------------ stage 1
    // Operand select and the saturating left shift (HardwareConfig.left_shift_overflow =
    // saturate): acc * 2^left clamped to int32.
    // sign extension to int32 (through ACC_W + 32 bits: no zero-width replication when ACC_W = 32)
    /* verilator lint_off UNUSEDSIGNAL */  // bits above 31 are the discarded extension
    wire [ACC_W+31:0]  acc_ext = {{32{acc[ACC_W-1]}}, acc};
    /* verilator lint_on UNUSEDSIGNAL */
    wire signed [31:0] acc32 = acc_ext[31:0];
    wire               use_neg = leaky_en & acc32[31];
    wire signed [MULT_W-1:0] m_sel = use_neg ? neg_mult : mult;
    wire signed [5:0]  s_sel = use_neg ? neg_shift : shift;
    wire [4:0]         left = s_sel[5] ? 5'd0 : s_sel[4:0];        // 0..31
    wire [5:0]         right = s_sel[5] ? (~s_sel + 6'd1) : 6'd0;  // 0..32
    // acc32 << left in 64 bits is exact (31 + 31 < 63); it fits int32 iff bits 63..31 agree.
    wire [63:0]        wide = {{32{acc32[31]}}, acc32} << left;
    wire               ovf = ~((&wide[63:31]) | ~(|wide[63:31]));
    wire signed [31:0] a_sat = ovf ? (acc32[31] ? INT32_MIN : INT32_MAX) : wide[31:0];

    reg                     s1_valid;
    reg signed [31:0]       s1_a;
    reg signed [MULT_W-1:0] s1_m;
    reg [5:0]               s1_right;
    reg                     s1_wide;

    always @(posedge clk) begin
        if (rst) s1_valid <= 1'b0;
        else     s1_valid <= valid_in;
        if (valid_in) begin
            s1_a     <= a_sat;
            s1_m     <= m_sel;
            s1_right <= right;
            s1_wide  <= out_wide & (OUT_W == 16);
        end
    end

    // ------------------------------------------------------------------ stage 2
    // SaturatingRoundingDoublingHighMul for a Q0.(MULT_W-1) multiplier:
    //   floor((a*m + 2^(MULT_W-2)) / 2^(MULT_W-1))
    // (equal to gemmlowp's truncating form with its sign-dependent nudge: ties toward +inf).
    // The one product that overflows int32 is a = INT32_MIN with m = -2^(MULT_W-1), which
    // gemmlowp saturates to INT32_MAX (for MULT_W = 32: INT32_MIN * INT32_MIN, exactly what
    // dla.arith does).  With the non-negative multipliers of the contract it cannot happen; the
    // check is kept for MULT_W = 32 fidelity.  (For MULT_W < 32, dla.arith does not saturate
    // and returns 2^31, outside int32; the two differ only after a right shift of 32.)
    wire signed [PROD_W-1:0] prod = s1_a * s1_m;
    wire signed [PROD_W-1:0] nudged = prod + ({{(PROD_W-1){1'b0}}, 1'b1} << (MULT_W - 2));
    /* verilator lint_off UNUSEDSIGNAL */  // only high[31:0] is the result
    wire signed [PROD_W-1:0] high = nudged >>> (MULT_W - 1);
    /* verilator lint_on UNUSEDSIGNAL */
    wire [MULT_W-1:0]        mult_min = {1'b1, {(MULT_W-1){1'b0}}};  // -2^(MULT_W-1)
    wire                     srdhm_sat = (s1_a == INT32_MIN) && (s1_m == mult_min);
    wire signed [31:0]       x = srdhm_sat ? INT32_MAX : high[31:0];

    reg               s2_valid;
    reg signed [31:0] s2_x;
    reg [5:0]         s2_right;
    reg               s2_wide;

    always @(posedge clk) begin
        if (rst) s2_valid <= 1'b0;
        else     s2_valid <= s1_valid;
        if (s1_valid) begin
            s2_x     <= x;
            s2_right <= s1_right;
            s2_wide  <= s1_wide;
        end
    end

    // ------------------------------------------------------------------ stage 3
    // RoundingDivideByPOT(x, e), ties away from zero: (x + 2^(e-1) - [x < 0]) >> e for e > 0,
    // in 34 bits (x + 2^31 needs 33); then saturation to int8, or int16 when s2_wide.
    wire signed [33:0] x34 = {{2{s2_x[31]}}, s2_x};  // sign extension to 34 bits
    wire [33:0]        half = (s2_right == 6'd0) ? 34'd0 : (34'd1 << (s2_right - 6'd1));
    wire [33:0]        neg_adj = (s2_x[31] && s2_right != 6'd0) ? 34'd1 : 34'd0;
    wire signed [33:0] biased = x34 + $signed(half) - $signed(neg_adj);
    wire signed [33:0] divided = biased >>> s2_right;
    wire signed [7:0]  q_sat8 = (divided > 34'sd127)  ? 8'sd127 :
                                (divided < -34'sd128) ? -8'sd128 : divided[7:0];
    wire signed [15:0] q_sat16 = (divided > 34'sd32767)  ? 16'sd32767 :
                                 (divided < -34'sd32768) ? -16'sd32768 : divided[15:0];
    /* verilator lint_off UNUSEDSIGNAL */  // OUT_W = 8 keeps the low byte only
    wire signed [15:0] q_sel = s2_wide ? q_sat16 : {{8{q_sat8[7]}}, q_sat8};
    /* verilator lint_on UNUSEDSIGNAL */
    wire signed [OUT_W-1:0] q_sat = q_sel[OUT_W-1:0];

    always @(posedge clk) begin
        if (rst) valid_out <= 1'b0;
        else     valid_out <= s2_valid;
        if (s2_valid) q <= q_sat;
    end

endmodule

`default_nettype wire

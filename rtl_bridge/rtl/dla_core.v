// dla_core: the DLA's weight-stationary ROWS x COLS int8 MAC array, running one tile.
//
// Operand widths (the tile's `mode`, latched at start; docs/rtl.md "Operand widths"):
//   mode 0  w8a8   int8 weights x int8 activations: one pass per fold (below).
//   mode 1  w8a16  int8 weights x int16 activations (and w4a16: int4 weights sign-extended to
//                  int8): digit passes.  x = hi*256 + lo, lo = x[7:0] unsigned 0..255,
//                  hi = x[15:8] signed.  Every fold runs twice over the same weights (A16_PASSES
//                  = 2): pass 0 feeds the rows lo (zero-extended to 9 bits), pass 1 hi
//                  (sign-extended); pass 1's column sums enter the accumulator buffer shifted
//                  left by 8.  Exact: sum w*x = sum w*lo + 256 * sum w*hi.  (PASSES_W8A16 = 2.)
//   mode 2  w4a8   int4 weights x int8 activations: packing.  Each PE holds W4_PACK = 2 int4
//                  weights of two filters (w_row byte c = {w[c + COLS], w[c]}, high nibble /
//                  low nibble) and keeps two partial sums, so one fold covers 2*COLS filters
//                  with the skew of the COLS physical columns.  (PACK_W4A8 = 2.)
//   mode 3  w16a8  int16 weights x int8 activations: weight digit passes.  w = hi*256 + lo.
//                  Every fold runs twice, each pass with its own weight phase: pass 0 loads the
//                  lo bytes (the PE reads them zero-extended to 9 bits), pass 1 the hi bytes
//                  (sign-extended); pass 1's column sums enter the buffer shifted left by 8.
//                  (PASSES_W16A8 = 2.)
// The parameters PASSES_W8A16 / PASSES_W4A16 / PACK_W4A8 / PASSES_W16A8 declare which modes are
// built (0 = not built); rtl_bridge/introspect.py reads them back for `dla rtl check`.  The cost
// of a pair is HardwareConfig.passes(w, a): 1 for w8a8, 2 for w8a16/w4a16/w16a8 (digit passes),
// 1/W4_PACK = 0.5 for w4a8.
//
// A tile is <= COLS filters (<= 2*COLS in mode 2) x `pixels` output pixels of a convolution GEMM (dla/cycles/compute.py),
// its reduction (the im2col window, W rows) cut into `folds` = ceil(W/ROWS) reduction folds.
// Fold f keeps window rows [f*ROWS, (f+1)*ROWS) x <= COLS filters of weights in the PEs while
// the same `pixels` pixels stream through (their activations of those rows).  Partial sums of
// every (pixel, column) are kept, exact, in an on-chip accumulator buffer (MAX_PIX pixels x
// COLS x BUF_W bits) between folds; only after the last fold are bias, saturation,
// requantizer and activation applied and the outputs streamed.  Per pixel p and column c:
//
//   acc[p][c] = sat_ACC_W( sum_r x[p][r] * w[r][c]  +  bias[c] )        (exact sum, then clamp)
//   q[p][c]   = dla_requant(acc, mult[c], shift[c], neg_mult[c], neg_shift[c], leaky_en, out_wide)
//
// Python model: dla.int_kernels.conv_int (exact accumulation, bias, saturation to acc_bits,
// gemmlowp requantization with the saturating left shift, fused LeakyReLU, int8 or int16 at the
// plan's widths); the adapter
// rtl_bridge/tile.py cuts a layer into tiles and produces stimulus and expected outputs.
//
// ---------------------------------------------------------------------------- protocol
// Cycle n is the clock period that ends with rising edge n.
//  * start / start_ready: a tile begins in the cycle where start & start_ready & pixels != 0
//    (start_ready = ~busy | done: an idle core, or the cycle in which the previous tile's
//    last beat leaves, so back-to-back tiles lose no cycle).  That cycle is tile cycle 0.
//    bias/mult/shift/neg_mult/neg_shift/leaky_en, `mode`, `out_wide`, `pixels` and `folds` are latched at that
//    edge (start is ignored while pixels == 0 or folds == 0).  With folds > 1, pixels must be
//    <= MAX_PIX (the accumulator buffer; a simulation check stops otherwise).
//  * folds: fold f (0-based) runs P passes (P = 2 in modes 1 and 3, else 1); a pass is a step.  Each
//    step runs a weight phase then a pixel phase.  Step 0's weight phase starts in tile
//    cycle 0; step s+1's starts VP = ROWS+COLS-1 cycles after step s's last pixel was
//    accepted (the array drains first), i.e. in tile cycle (s+1)*T with
//    T = pixels + 2*ROWS + COLS - 2 when no input gap occurs.  The weight phase of a fold's
//    second pass (mode 1) keeps the fold's weights: w_load stays low in its ROWS cycles.
//  * weights: w_row is sampled in the ROWS cycles of each fold's weight phase (w_load is high
//    in them, no handshake; fold 0: tile cycles 0 .. ROWS-1): beat k of fold f is reduction row
//    f*ROWS + k, i.e. w_row[8c +: 8] = w[f*ROWS + k][c]; mode 2: w_row[8c +: 4] =
//    w[f*ROWS + k][c] and w_row[8c+4 +: 4] = w[f*ROWS + k][c + COLS], both int4; mode 3: the
//    fold's lo bytes in pass 0's weight phase, its hi bytes in pass 1's.  The rows form a
//    shift register ROWS deep (new beats enter at row ROWS-1 and move up one row per beat),
//    so a partial tile (rows_used < ROWS) still takes ROWS beats, padded with zero rows.
//  * inputs: in_data/in_valid/in_ready, one beat per pixel and step (fold f's pixels P
//    times), lanes of A_W bits (16 when PASSES_W8A16 is built, else 8):
//    in_data[A_W*r +: A_W] = x[p][f*ROWS + r]; in modes 0 and 2 only the lane's low byte is
//    read (int8), in mode 1 the whole lane (int16; the core picks the pass's digit).  Unused
//    rows may hold anything: their weights are zero.  in_ready is
//    first high in tile cycle ROWS, and is low during every weight phase and drain.
//  * outputs: out_data/out_valid/out_ready, one beat per pixel in pixel order,
//    out_data[OUT_W*j +: OUT_W] = q[p][j] for the NQ = COLS*W4_PACK filter lanes j (lanes
//    >= COLS carry mode 2's high-nibble filters, junk otherwise), all of a pixel together;
//    each q is int8 sign-extended to OUT_W, or int16 when out_wide (OUT_W = 16).
//  * done: high for one cycle, the cycle in which the tile's last output beat is accepted
//    (out_valid & out_ready); it is combinational in out_ready.
//
// ---------------------------------------------------------------------------- timing
// Pipeline latencies, for a pixel accepted (in_valid & in_ready) in cycle k.  Nothing stalls;
// input gaps travel through the array as invalid wavefronts.
//   input skew      row r sees the pixel's activation in cycle k + r (row 0 combinationally
//                   from in_data, row r through r registers: ROWS-1 cycles of skew in all)
//   PE (r, c)       multiplies-accumulates in cycle k + r + c; 1 register (activation to
//                   the right, partial sum down)
//   column c        its sum leaves the bottom row in cycle k + ROWS + c
//   output deskew   COLS-1-c registers on column c: all columns together in cycle
//                   k + ROWS + COLS - 1 (COLS-1 cycles of output skew)
//   bias + clamp    combinational, in front of the requantizer
//   dla_requant     REQUANT_LATENCY cycles (its LATENCY, 3)
//   output buffer   0 cycles when empty (bypass)
// => the pixel's output beat is offered in cycle k + ROWS + COLS - 1 + REQUANT_LATENCY.
//
// Cycle count of a tile (the convention; tests/rtl_bridge/dla_core checks it): tile cycle 0 is
// the cycle in which start is taken.  With no input gap and no output stall, done is high in
//     cycle N = folds * P * (pixels + 2*ROWS + COLS - 2) + REQUANT_LATENCY
//             = dla.cycles.tile_cycles(rows_used, cols_used, pixels, hw, folds) for P = 1
// (P = 2 in mode 1: every fold's two passes are timed as two folds; mode 2 as mode 0).
// Each non-last fold f occupies tile cycles f*T .. (f+1)*T - 1 (its last pixel's aligned column
// sums enter the accumulator buffer in cycle (f+1)*T, the same cycle in which the next fold's
// first weight beat is sampled: no PE still needs the old weights then).  The last fold is
// timed exactly like a one-fold tile, shifted by (folds-1)*T.  For folds = 1:
// i.e. N = (index of the rising edge that samples done) - (index of the edge that samples
// start).  Weight beats fill cycles 0..ROWS-1, pixel beats ROWS..ROWS+pixels-1, and the last
// pixel (k = ROWS+pixels-1) leaves in k + ROWS + COLS - 1 + REQUANT_LATENCY = N.  The next
// tile's start can be taken in cycle N (start_ready), so back-to-back tiles take exactly the
// sum of their N.  rows_used / cols_used do not change N: the weight shift register is always
// ROWS deep and the skews always ROWS-1 / COLS-1.
//
// Accumulator buffer: partial sums are added exactly in BUF_W = SUM_W + HI_W + FOLD_W bits (one
// pass's column sum fits SUM_W, its digit shift adds HI_W = 9 bits in mode 1 (the shift by 8 and
// the two passes of a fold), and < 2^FOLD_W folds add at most FOLD_W bits), and the final
// buffer + column sum + bias is saturated to ACC_W once, after the last fold: exactly
// dla.int_kernels.conv_int (exact sum, then fit to acc_bits).  (At w8a8 with ACC_W = 32 even a
// per-fold saturation could not differ: |partial| <= W*128*128 <= 4608*2^14 < 2^27 < 2^31 for
// every yolov3-tiny layer, W <= 3*3*512.  At w8a16 it could: |partial| <= W*32768*128 < 2^35,
// which is why the sum stays exact in BUF_W bits until the one saturation.)
//
// Backpressure: the array never stalls.  A credit counter (pixels accepted - beats sent)
// (counting the last fold's pixels only; earlier folds
// produce no output) limits in-flight pixels to DEPTH = ROWS + COLS + REQUANT_LATENCY, the size of the output
// buffer, so no result is lost; without backpressure at most DEPTH - 1 are in flight and
// in_ready never drops.
//
// Verilog-2005, synthesizable (initial blocks and the translate_off block are checks only).
`default_nettype none

module dla_core #(
    parameter integer ROWS = 16,            // PE rows: reduction rows per tile (HardwareConfig.rows)
    parameter integer COLS = 16,            // PE columns: filters per tile (HardwareConfig.cols)
    parameter integer ACC_W = 32,           // accumulator width, 8..32 (HardwareConfig.acc_bits)
    parameter integer MULT_W = 32,          // requantizer multiplier width, 2..32 (HardwareConfig.multiplier_bits)
    parameter integer REQUANT_LATENCY = 3,  // must equal dla_requant's LATENCY (HardwareConfig.requant_latency)
    parameter integer PIX_W = 16,           // width of the pixel count of one tile
    parameter integer FOLD_W = 12,          // width of the fold count of one tile
    parameter integer MAX_PIX = 256,        // accumulator buffer: most pixels of a tile with folds > 1
    parameter integer OUT_W = 16,           // output lane width: 8 (int8 only) or 16 (int8 or int16, out_wide)
    parameter integer PASSES_W8A16 = 2,     // w8a16 (mode 1): A16_PASSES = 2 digit passes, or 0 = not built
    parameter integer PASSES_W4A16 = 2,     // w4a16: mode 1 with int4 weights (needs PASSES_W8A16), or 0
    parameter integer PACK_W4A8 = 2,        // w4a8 (mode 2): W4_PACK = 2 filters per PE, or 0 = not built
    parameter integer PASSES_W16A8 = 2      // w16a8 (mode 3): 2 weight digit passes, or 0 = not built
) (
    input  wire                     clk,
    input  wire                     rst,          // synchronous, active high
    // tile control
    input  wire                     start,
    output wire                     start_ready,  // ~busy | done
    input  wire [PIX_W-1:0]         pixels,       // input vectors of the tile, >= 1 (0: start ignored)
    input  wire [FOLD_W-1:0]        folds,        // reduction folds of the tile, >= 1 (0: start ignored)
    input  wire [1:0]               mode,         // operand widths: 0 w8a8, 1 w8a16/w4a16, 2 w4a8, 3 w16a8 (latched at start)
    input  wire                     out_wide,     // int16 outputs (OUT_W = 16), else int8 (latched at start)
    output reg                      busy,
    output wire                     done,
    // weights, tile cycles 0 .. ROWS-1
    output wire                     w_load,
    input  wire [COLS*8-1:0]        w_row,
    // per-column requantization, latched at start
    // (port widths spell out NQ = COLS * W4_PACK and A_W: Verilog-2005 has no localparams before the ports)
    input  wire [COLS*(PACK_W4A8 != 0 ? 2 : 1)*ACC_W-1:0]  bias,       // per filter lane (NQ lanes)
    input  wire [COLS*(PACK_W4A8 != 0 ? 2 : 1)*MULT_W-1:0] mult,
    input  wire [COLS*(PACK_W4A8 != 0 ? 2 : 1)*6-1:0]      shift,
    input  wire [COLS*(PACK_W4A8 != 0 ? 2 : 1)*MULT_W-1:0] neg_mult,
    input  wire [COLS*(PACK_W4A8 != 0 ? 2 : 1)*6-1:0]      neg_shift,
    input  wire                     leaky_en,     // the layer's activation: fused LeakyReLU
    // input vectors
    input  wire                     in_valid,
    output wire                     in_ready,
    input  wire [ROWS*(PASSES_W8A16 != 0 ? 16 : 8)-1:0] in_data,  // ROWS lanes of A_W bits
    // output vectors
    output wire                     out_valid,
    input  wire                     out_ready,
    output wire [COLS*(PACK_W4A8 != 0 ? 2 : 1)*OUT_W-1:0] out_data  // NQ lanes of OUT_W bits
);

    // Modes built, and their costs (read back by rtl_bridge/introspect.py; fixed by this design).
    localparam integer A16_PASSES = 2;  // digit passes of mode 1
    localparam integer W4_PACK = (PACK_W4A8 != 0) ? 2 : 1;  // filters per PE in mode 2 (1: not built)
    localparam integer HAS_A16 = (PASSES_W8A16 != 0) ? 1 : 0;
    localparam integer HAS_W4 = (PACK_W4A8 != 0) ? 1 : 0;
    localparam integer HAS_W16 = (PASSES_W16A8 != 0) ? 1 : 0;
    localparam integer NQ = COLS * W4_PACK;  // filter lanes: bias/requantizer/output per lane
    localparam integer A_W = (HAS_A16 != 0) ? 16 : 8;  // activation lane width of in_data
    localparam integer AX_W = (HAS_A16 != 0) ? 9 : 8;  // activation operand of a PE (a 9-bit digit in mode 1)
    localparam integer HI_W = (HAS_A16 != 0 || HAS_W16 != 0) ? 9 : 0;  // bits the digit shift (8) and the two passes add
    // |sum of ROWS AX_W-bit x int8 products| <= ROWS * 255 * 128 < ROWS * 2^15 (ROWS * 2^14 for
    // AX_W = 8): exact in SUM_W.  (The w4 products, |a*w| <= 2^10, and mode 3's int8 x lo byte,
    // |a*w| <= 128 * 255, fit as well.)
    localparam integer SUM_W = ((HAS_A16 != 0 || HAS_W16 != 0) ? 9 : 8) + 8 + $clog2(ROWS);
    // in-flight limit = output buffer entries (see header)
    localparam integer DEPTH = ROWS + COLS + REQUANT_LATENCY;
    localparam integer AW = $clog2(DEPTH);
    localparam integer CW = $clog2(DEPTH + 1);
    localparam integer LW = $clog2(ROWS) + 1;
    localparam integer VP = ROWS + COLS - 1;  // acceptance -> aligned column results
    // exact sum over < 2^FOLD_W folds (see header)
    localparam integer BUF_W = SUM_W + HI_W + FOLD_W;
    localparam integer XW = (BUF_W > ACC_W ? BUF_W : ACC_W) + 2;  // buffer + column sum + bias, exact
    localparam integer BI = (MAX_PIX > 1) ? $clog2(MAX_PIX) : 1;  // buffer index width
    localparam integer DW = $clog2(VP + 1);
    // The constants compared with / assigned to counters, sized to their widths (all fit).
    localparam [31:0]     DEPTH_U = DEPTH;
    localparam [31:0]     DEPTH_M1_U = DEPTH - 1;
    localparam [31:0]     ROWS_M1_U = ROWS - 1;
    localparam [31:0]     VP_M1_U = VP - 1;
    localparam [CW:0]     DEPTH_O = DEPTH_U[CW:0];       // credit limit, outstanding's width
    localparam [CW-1:0]   DEPTH_C = DEPTH_U[CW-1:0];     // buffer full, fifo_cnt's width
    localparam [AW-1:0]   DEPTH_M1 = DEPTH_M1_U[AW-1:0]; // last buffer entry, pointer width
    localparam [LW-1:0]   ROWS_M1 = ROWS_M1_U[LW-1:0];   // last weight beat, load_cnt's width
    localparam [DW-1:0]   VP_M1 = VP_M1_U[DW-1:0];       // drain cycles, drain_cnt's width
    localparam [31:0]     MAX_PIX_U = MAX_PIX;  // MAX_PIX as an unsigned word (it is >= 1)

    initial begin
        if (ROWS < 1 || COLS < 1) begin
            $display("ERROR: dla_core: ROWS=%0d COLS=%0d must be >= 1", ROWS, COLS);
            $finish;
        end
        if (ACC_W < 8 || ACC_W > 32) begin
            $display("ERROR: dla_core: ACC_W=%0d is outside 8..32", ACC_W);
            $finish;
        end
        if (MULT_W < 2 || MULT_W > 32) begin
            $display("ERROR: dla_core: MULT_W=%0d is outside 2..32", MULT_W);
            $finish;
        end
        if (REQUANT_LATENCY < 1) begin
            $display("ERROR: dla_core: REQUANT_LATENCY=%0d must be >= 1", REQUANT_LATENCY);
            $finish;
        end
        if (FOLD_W < 1 || MAX_PIX < 1) begin
            $display("ERROR: dla_core: FOLD_W=%0d and MAX_PIX=%0d must be >= 1", FOLD_W, MAX_PIX);
            $finish;
        end
        if (PIX_W < 1) begin
            $display("ERROR: dla_core: PIX_W=%0d must be >= 1", PIX_W);
            $finish;
        end
        if (OUT_W != 8 && OUT_W != 16) begin
            $display("ERROR: dla_core: OUT_W=%0d is not 8 or 16", OUT_W);
            $finish;
        end
        if ((PASSES_W8A16 != 0 && PASSES_W8A16 != A16_PASSES) || (PASSES_W4A16 != 0 && PASSES_W4A16 != A16_PASSES) ||
            (PASSES_W4A16 != 0 && PASSES_W8A16 == 0) || (PACK_W4A8 != 0 && PACK_W4A8 != 2) ||
            (PASSES_W16A8 != 0 && PASSES_W16A8 != 2)) begin
            $display("ERROR: dla_core: PASSES_W8A16=%0d PASSES_W4A16=%0d PACK_W4A8=%0d PASSES_W16A8=%0d: each is 0 (not built) or 2 (and w4a16 needs w8a16)",
                     PASSES_W8A16, PASSES_W4A16, PACK_W4A8, PASSES_W16A8);
            $finish;
        end
    end

    // ------------------------------------------------------------------ control
    reg             loading;      // tile cycles 1 .. ROWS-1
    reg [LW-1:0]    load_cnt;     // weight beats taken
    reg [PIX_W-1:0] in_left;      // pixels still to accept
    reg [PIX_W-1:0] out_left;     // beats still to send
    reg [CW:0]      outstanding;  // accepted - sent (last fold)
    reg [PIX_W-1:0]  pix_q;       // the tile's pixels
    reg [FOLD_W-1:0] fold_left;   // folds after the current one
    reg              first_fold;  // the current step is the tile's first (fold 0, pass 0)
    reg              draining;    // between a non-last step's last pixel and the next weight phase
    reg [DW-1:0]     drain_cnt;   // cycles of drain left
    reg              a16_q;       // mode 1 (digit passes)
    reg              w4_q;        // mode 2 (two int4 weights per PE)
    reg              w16_q;       // mode 3 (weight digit passes)
    reg              wide_q;      // int16 outputs
    reg              pass_hi;     // modes 1, 3: the current step is a fold's second pass (hi digits)
    reg              hold;        // the current weight phase keeps the weights (w_load low)

    wire out_fire = out_valid & out_ready;
    assign done = busy & out_fire & (out_left == {{(PIX_W-1){1'b0}}, 1'b1});
    assign start_ready = ~busy | done;
    wire start_fire = start & start_ready & (pixels != {PIX_W{1'b0}}) & (folds != {FOLD_W{1'b0}});
    // the last step: the last fold's last pass
    wire two_pass = a16_q | w16_q;
    wire last_fold = (fold_left == {FOLD_W{1'b0}}) & (~two_pass | pass_hi);
    wire reload = busy & draining & (drain_cnt == {DW{1'b0}});  // next step's weight phase, cycle 0
    wire next_hi = two_pass & ~pass_hi;  // the next step is the hi pass of the same fold
    wire next_hold = a16_q & ~pass_hi;  // ... and keeps the fold's weights (mode 1; mode 3 loads the hi bytes)
    assign w_load = start_fire | (loading & ~hold) | (reload & ~next_hold);
    assign in_ready = busy & ~loading & ~draining & (in_left != {PIX_W{1'b0}}) &
                      (~last_fold | (outstanding < DEPTH_O));
    wire in_fire = in_valid & in_ready;
    wire in_last = in_fire & (in_left == {{(PIX_W-1){1'b0}}, 1'b1});  // a fold's last pixel

    reg [NQ*ACC_W-1:0]    bias_q;
    reg [NQ*MULT_W-1:0]   mult_q;
    reg [NQ*6-1:0]        shift_q;
    reg [NQ*MULT_W-1:0]   nmult_q;
    reg [NQ*6-1:0]        nshift_q;
    reg                   leaky_q;

    always @(posedge clk) begin
        if (rst) begin
            busy <= 1'b0;
            loading <= 1'b0;
            load_cnt <= {LW{1'b0}};
            in_left <= {PIX_W{1'b0}};
            out_left <= {PIX_W{1'b0}};
            fold_left <= {FOLD_W{1'b0}};
            first_fold <= 1'b0;
            draining <= 1'b0;
            drain_cnt <= {DW{1'b0}};
            pix_q <= {PIX_W{1'b0}};
            a16_q <= 1'b0;
            w4_q <= 1'b0;
            w16_q <= 1'b0;
            wide_q <= 1'b0;
            pass_hi <= 1'b0;
            hold <= 1'b0;
        end else if (start_fire) begin
            busy <= 1'b1;
            loading <= (ROWS > 1);
            load_cnt <= 1;
            in_left <= pixels;
            out_left <= pixels;
            pix_q <= pixels;
            fold_left <= folds - 1'b1;
            first_fold <= 1'b1;
            draining <= 1'b0;
            a16_q <= (mode == 2'd1) & (HAS_A16 != 0);
            w4_q <= (mode == 2'd2) & (HAS_W4 != 0);
            w16_q <= (mode == 2'd3) & (HAS_W16 != 0);
            wide_q <= out_wide & (OUT_W == 16);
            pass_hi <= 1'b0;
            hold <= 1'b0;
        end else if (reload) begin  // next step: weight phase cycle 0 now, pixels again
            draining <= 1'b0;
            loading <= (ROWS > 1);
            load_cnt <= 1;
            in_left <= pix_q;
            first_fold <= 1'b0;
            hold <= next_hold;
            pass_hi <= next_hi;
            if (~next_hi) fold_left <= fold_left - 1'b1;
        end else begin
            if (done) busy <= 1'b0;
            if (loading) begin
                load_cnt <= load_cnt + 1'b1;
                if (load_cnt == ROWS_M1) loading <= 1'b0;
            end
            if (in_fire) in_left <= in_left - 1'b1;
            if (out_fire) out_left <= out_left - 1'b1;
            if (in_last & ~last_fold) begin
                draining <= 1'b1;
                drain_cnt <= VP_M1;
            end else if (draining) begin
                drain_cnt <= drain_cnt - 1'b1;
            end
        end
        if (rst) outstanding <= 0;
        else outstanding <= outstanding + {{CW{1'b0}}, in_fire & last_fold} - {{CW{1'b0}}, out_fire};
        if (start_fire) begin
            bias_q <= bias;
            mult_q <= mult;
            shift_q <= shift;
            nmult_q <= neg_mult;
            nshift_q <= neg_shift;
            leaky_q <= leaky_en;
        end
    end

    // ------------------------------------------------------------------ input skew
    // Row r's activation operand (AX_W bits): the lane's int8 sign-extended (modes 0, 2), or
    // the pass's digit of the int16 lane (mode 1: lo zero-extended, hi sign-extended); delayed
    // r cycles (bubbles enter as zeros).
    wire [ROWS*AX_W-1:0] x_in;
    wire [ROWS*AX_W-1:0] x_skew;

    genvar r, c;
    generate
        for (r = 0; r < ROWS; r = r + 1) begin : g_digit
            wire [A_W-1:0] lane = in_data[A_W*r +: A_W];
            wire [AX_W-1:0] d;
            if (HAS_A16 != 0) begin : g_a16
                assign d = ~a16_q ? {lane[7], lane[7:0]} :
                           pass_hi ? {lane[15], lane[15:8]} : {1'b0, lane[7:0]};
            end else begin : g_a8
                assign d = lane[7:0];
            end
            assign x_in[AX_W*r +: AX_W] = in_fire ? d : {AX_W{1'b0}};
        end
        for (r = 0; r < ROWS; r = r + 1) begin : g_skew
            if (r == 0) begin : g_direct
                assign x_skew[AX_W-1:0] = x_in[AX_W-1:0];
            end else if (r == 1) begin : g_one
                reg [AX_W-1:0] sk;
                always @(posedge clk) sk <= x_in[AX_W +: AX_W];
                assign x_skew[AX_W +: AX_W] = sk;
            end else begin : g_chain
                reg [AX_W*r-1:0] sk;  // r stages, newest in the low word
                always @(posedge clk) sk <= {sk[AX_W*(r-1)-1:0], x_in[AX_W*r +: AX_W]};
                assign x_skew[AX_W*r +: AX_W] = sk[AX_W*r-1 -: AX_W];
            end
        end
    endgenerate

    // ------------------------------------------------------------------ PE array
    // PE (r, c) holds the weight byte w[r][c]; each cycle: a_out <= a_in (to the right),
    // p_out <= p_in + a_in * w (down; p_in = 0 on row 0).  Mode 2: the byte is two int4
    // weights, p_out <= p_in + a_in * w[3:0] (filter c) and q_out <= q_in + a_in * w[7:4]
    // (filter c + COLS; the second chain exists when PACK_W4A8 is built).
    // Index of PE (r, c): r*COLS + c.
    // (Arrays of nets, one element per PE: a flat bus would make every PE's update wake every
    // reader of the bus in an event-driven simulator.)
    wire [7:0]       w_arr [0:ROWS*COLS-1];
    wire [AX_W-1:0]  a_arr [0:ROWS*COLS-1];
    wire [SUM_W-1:0] p_arr [0:ROWS*COLS-1];
    wire [SUM_W-1:0] q_arr [0:ROWS*COLS-1];

    generate
        for (r = 0; r < ROWS; r = r + 1) begin : g_row
            for (c = 0; c < COLS; c = c + 1) begin : g_pe
                reg signed [7:0]     w;
                reg signed [AX_W-1:0] a_out;
                reg signed [SUM_W-1:0] p_out;
                wire signed [AX_W-1:0] a_in;
                wire signed [SUM_W-1:0] p_in;
                wire signed [7:0] w_next;
                if (c == 0) begin : g_left
                    assign a_in = x_skew[AX_W*r +: AX_W];
                end else begin : g_inner_a
                    assign a_in = a_arr[r*COLS + c - 1];
                end
                if (r == 0) begin : g_top
                    assign p_in = {SUM_W{1'b0}};
                end else begin : g_inner_p
                    assign p_in = p_arr[(r-1)*COLS + c];
                end
                if (r == ROWS - 1) begin : g_bottom
                    assign w_next = w_row[8*c +: 8];  // new weight beats enter the bottom row
                end else begin : g_inner_w
                    assign w_next = w_arr[(r+1)*COLS + c];
                end
                // the low weight: the byte (modes 0, 1), its low nibble (mode 2), sign-extended, or
                // (mode 3, pass 0) the lo byte of an int16 weight, zero-extended: 9 bits
                wire signed [8:0] w_lo = w4_q ? {{5{w[3]}}, w[3:0]} : {(w16_q & ~pass_hi) ? 1'b0 : w[7], w};
                wire signed [SUM_W-1:0] prod = a_in * w_lo;  // exact: |a*w| <= 255*128 < 2^15
                always @(posedge clk) begin
                    if (w_load) w <= w_next;
                    a_out <= a_in;
                    p_out <= p_in + prod;
                end
                assign w_arr[r*COLS + c] = w;
                assign a_arr[r*COLS + c] = a_out;
                assign p_arr[r*COLS + c] = p_out;
                if (HAS_W4 != 0) begin : g_pack
                    reg signed [SUM_W-1:0] q_out;
                    wire signed [SUM_W-1:0] q_in;
                    if (r == 0) begin : g_top2
                        assign q_in = {SUM_W{1'b0}};
                    end else begin : g_inner_q
                        assign q_in = q_arr[(r-1)*COLS + c];
                    end
                    // the high nibble's product; 0 outside mode 2 (no events in the chain)
                    wire signed [3:0] w_hi = w[7:4];
                    wire signed [SUM_W-1:0] zero = {SUM_W{1'b0}};
                    wire signed [SUM_W-1:0] prod_hi = w4_q ? a_in * w_hi : zero;  // signed operands: exact
                    always @(posedge clk) q_out <= q_in + prod_hi;
                    assign q_arr[r*COLS + c] = q_out;
                end else begin : g_nopack
                    assign q_arr[r*COLS + c] = {SUM_W{1'b0}};
                end
            end
        end
    endgenerate

    // Valid of each wavefront: vpipe[VP-1] is high when the aligned column results are a pixel.
    reg [VP-1:0] vpipe;
    generate
        if (VP == 1) begin : g_vp1
            always @(posedge clk) vpipe <= rst ? 1'b0 : in_fire;
        end else begin : g_vpn
            always @(posedge clk) vpipe <= rst ? {VP{1'b0}} : {vpipe[VP-2:0], in_fire};
        end
    endgenerate
    wire acc_valid = vpipe[VP-1];
    // Fold tags travelling with each wavefront: first fold (buffer starts from 0), last fold
    // (the result goes to the requantizer instead of the buffer).
    // And the digit tag: the column sums of a hi pass are worth 2^8.
    reg [VP-1:0] fpipe, lpipe, hpipe;
    generate
        if (VP == 1) begin : g_tp1
            always @(posedge clk) begin
                fpipe <= first_fold;
                lpipe <= last_fold;
                hpipe <= pass_hi;
            end
        end else begin : g_tpn
            always @(posedge clk) begin
                fpipe <= {fpipe[VP-2:0], first_fold};
                lpipe <= {lpipe[VP-2:0], last_fold};
                hpipe <= {hpipe[VP-2:0], pass_hi};
            end
        end
    endgenerate
    wire acc_first = fpipe[VP-1];
    wire acc_last = lpipe[VP-1];
    wire acc_hi = hpipe[VP-1];
    wire rq_in_valid = acc_valid & acc_last;

    // ------------------------------------------------------------------ accumulator buffer
    // One word per pixel (NQ partial sums of BUF_W bits); the aligned pixel index counts
    // wavefronts modulo the tile's pixels (every step sends them in the same order).
    reg [NQ*BUF_W-1:0]   accbuf [0:MAX_PIX-1];
    reg [PIX_W-1:0]      acc_idx;
    wire [BI-1:0]        buf_idx = acc_idx[BI-1:0];
    wire [NQ*BUF_W-1:0]  buf_rd = accbuf[buf_idx];
    wire [NQ*BUF_W-1:0]  buf_wr;
    always @(posedge clk) begin
        if (rst) acc_idx <= {PIX_W{1'b0}};
        else if (acc_valid) acc_idx <= (acc_idx == pix_q - 1'b1) ? {PIX_W{1'b0}} : acc_idx + 1'b1;
        if (acc_valid & ~acc_last) accbuf[buf_idx] <= buf_wr;
    end

    // ------------------------------------------------------------------ deskew, bias, requantizer
    wire [NQ*OUT_W-1:0] rq_q;
    /* verilator lint_off UNUSEDSIGNAL */  // every lane's valid is the same; lane 0's is used
    wire [NQ-1:0]     rq_valid_col;
    /* verilator lint_on UNUSEDSIGNAL */
    wire [NQ*SUM_W-1:0] lane_sum;  // aligned column sums: lane c < COLS chain p, lane COLS + c chain q
    wire signed [XW-1:0] acc_max = {{(XW-ACC_W+1){1'b0}}, {(ACC_W-1){1'b1}}};
    wire signed [XW-1:0] acc_min = {{(XW-ACC_W+1){1'b1}}, {(ACC_W-1){1'b0}}};

    generate
        for (c = 0; c < NQ; c = c + 1) begin : g_lane
            localparam integer D = COLS - 1 - (c % COLS);  // deskew registers of this column
            wire [SUM_W-1:0] bottom = (c < COLS) ? p_arr[(ROWS-1)*COLS + (c % COLS)] : q_arr[(ROWS-1)*COLS + (c % COLS)];
            if (D == 0) begin : g_d0
                assign lane_sum[SUM_W*c +: SUM_W] = bottom;
            end else if (D == 1) begin : g_d1
                reg [SUM_W-1:0] ds;
                always @(posedge clk) ds <= bottom;
                assign lane_sum[SUM_W*c +: SUM_W] = ds;
            end else begin : g_dn
                reg [D*SUM_W-1:0] ds;  // D stages, newest in the low word
                always @(posedge clk) ds <= {ds[(D-1)*SUM_W-1:0], bottom};
                assign lane_sum[SUM_W*c +: SUM_W] = ds[D*SUM_W-1 -: SUM_W];
            end
        end
        for (c = 0; c < NQ; c = c + 1) begin : g_col
            wire signed [SUM_W-1:0] col_sum = lane_sum[SUM_W*c +: SUM_W];
            wire signed [ACC_W-1:0] b = bias_q[ACC_W*c +: ACC_W];
            // this pass's column sum, sign-extended to BUF_W; a hi pass's is worth 2^8
            wire signed [BUF_W-1:0] cs = {{(HI_W+FOLD_W){col_sum[SUM_W-1]}}, col_sum};
            wire signed [BUF_W-1:0] cs_w = (HI_W != 0 && acc_hi) ? (cs <<< 8) : cs;
            // partial sum of the earlier steps (0 in the first) + this step's: exact
            wire signed [BUF_W-1:0] prev = acc_first ? {BUF_W{1'b0}} : buf_rd[BUF_W*c +: BUF_W];
            wire signed [BUF_W-1:0] part = prev + cs_w;  // cannot overflow (see header)
            assign buf_wr[BUF_W*c +: BUF_W] = part;
            wire signed [XW-1:0] wide = {{(XW-BUF_W){part[BUF_W-1]}}, part} +
                                        {{(XW-ACC_W){b[ACC_W-1]}}, b};  // both sign-extended to XW: exact
            wire signed [ACC_W-1:0] acc = (wide > acc_max) ? acc_max[ACC_W-1:0] :
                                          (wide < acc_min) ? acc_min[ACC_W-1:0] : wide[ACC_W-1:0];
            wire signed [OUT_W-1:0] q_c;
            dla_requant #(.ACC_W(ACC_W), .MULT_W(MULT_W), .OUT_W(OUT_W)) u_rq (
                .clk(clk), .rst(rst), .valid_in(rq_in_valid), .acc(acc),
                .mult(mult_q[MULT_W*c +: MULT_W]), .shift(shift_q[6*c +: 6]), .leaky_en(leaky_q),
                .neg_mult(nmult_q[MULT_W*c +: MULT_W]), .neg_shift(nshift_q[6*c +: 6]), .out_wide(wide_q),
                .valid_out(rq_valid_col[c]), .q(q_c));
            assign rq_q[OUT_W*c +: OUT_W] = q_c;
        end
    endgenerate
    wire rq_valid = rq_valid_col[0];

    // ------------------------------------------------------------------ output buffer
    // DEPTH entries with bypass: an empty buffer passes the requantizer's result through in
    // the same cycle; otherwise beats leave in order from the head.
    reg [NQ*OUT_W-1:0] fifo [0:DEPTH-1];
    reg [AW-1:0]     rd_ptr, wr_ptr;
    reg [CW-1:0]     fifo_cnt;
    wire fifo_empty = (fifo_cnt == {CW{1'b0}});
    assign out_valid = ~fifo_empty | rq_valid;
    assign out_data = fifo_empty ? rq_q : fifo[rd_ptr];
    wire push = rq_valid & ~(fifo_empty & out_ready);
    wire pop = ~fifo_empty & out_ready;

    always @(posedge clk) begin
        if (rst) begin
            rd_ptr <= {AW{1'b0}};
            wr_ptr <= {AW{1'b0}};
            fifo_cnt <= {CW{1'b0}};
        end else begin
            if (push) begin
                fifo[wr_ptr] <= rq_q;
                wr_ptr <= (wr_ptr == DEPTH_M1) ? {AW{1'b0}} : wr_ptr + 1'b1;
            end
            if (pop) rd_ptr <= (rd_ptr == DEPTH_M1) ? {AW{1'b0}} : rd_ptr + 1'b1;
            fifo_cnt <= fifo_cnt + {{(CW-1){1'b0}}, push} - {{(CW-1){1'b0}}, pop};
        end
    end

    // ------------------------------------------------------------------ simulation checks
    // synthesis translate_off
    // The requantizer's valid must follow acc_valid by exactly REQUANT_LATENCY cycles (the
    // credit limit and the documented tile cycle count rely on it).
    reg [REQUANT_LATENCY-1:0] rq_expect;
    generate
        if (REQUANT_LATENCY == 1) begin : g_chk1
            always @(posedge clk) rq_expect <= rst ? 1'b0 : rq_in_valid;
        end else begin : g_chkn
            always @(posedge clk)
                rq_expect <= rst ? {REQUANT_LATENCY{1'b0}} : {rq_expect[REQUANT_LATENCY-2:0], rq_in_valid};
        end
    endgenerate
    always @(posedge clk) begin
        if (!rst && rq_valid !== rq_expect[REQUANT_LATENCY-1]) begin
            $display("ERROR: dla_core: dla_requant's latency is not REQUANT_LATENCY=%0d", REQUANT_LATENCY);
            $finish;
        end
        if (!rst && start_fire && folds > 1 && {32'd0, pixels} > {{PIX_W{1'b0}}, MAX_PIX_U}) begin
            $display("ERROR: dla_core: a tile of %0d folds has %0d pixels > MAX_PIX=%0d", folds, pixels, MAX_PIX);
            $finish;
        end
        if (!rst && start_fire && ((mode == 2'd3 && HAS_W16 == 0) || (mode == 2'd1 && HAS_A16 == 0) ||
                                   (mode == 2'd2 && HAS_W4 == 0))) begin
            $display("ERROR: dla_core: mode %0d is not built (PASSES_W8A16=%0d PACK_W4A8=%0d PASSES_W16A8=%0d)", mode,
                     PASSES_W8A16, PACK_W4A8, PASSES_W16A8);
            $finish;
        end
        if (!rst && push && fifo_cnt == DEPTH_C) begin
            $display("ERROR: dla_core: output buffer overflow");
            $finish;
        end
    end
    // synthesis translate_on

endmodule

`default_nettype wire

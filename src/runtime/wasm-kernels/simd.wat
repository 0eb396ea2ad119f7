;; Hand-written WebAssembly SIMD loops that run directly on the tfjs wasm backend's heap (the
;; module imports that backend's memory). Pointers are byte offsets of float32 tensors.
;; Compiled by build-simd.ts into simd-binary.ts; MEMORY is replaced by the import's limits
;; ("1" for the single-threaded backend, "1 65536 shared" for the threaded one).
(module
  (import "env" "memory" (memory MEMORY))

  ;; out = x > 0 ? dy : 0 (the ReLU gradient)
  (func (export "relu_grad") (param $x i32) (param $dy i32) (param $out i32) (param $n i32)
    (local $i i32) (local $end i32)
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (v128.store (i32.add (local.get $out) (local.get $i))
          (v128.and
            (v128.load (i32.add (local.get $dy) (local.get $i)))
            (f32x4.gt (v128.load (i32.add (local.get $x) (local.get $i))) (v128.const f32x4 0 0 0 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (f32.store (i32.add (local.get $out) (local.get $i))
          (select
            (f32.load (i32.add (local.get $dy) (local.get $i)))
            (f32.const 0)
            (f32.gt (f32.load (i32.add (local.get $x) (local.get $i))) (f32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $next))))

  ;; out = lo <= x <= hi ? dy : 0 (the gradient of clipByValue(x, lo, hi), ReLU6's among them)
  (func (export "clip_grad") (param $x i32) (param $dy i32) (param $out i32) (param $n i32) (param $lo f32) (param $hi f32)
    (local $i i32) (local $end i32) (local $v v128) (local $lo4 v128) (local $hi4 v128) (local $s f32)
    (local.set $lo4 (f32x4.splat (local.get $lo)))
    (local.set $hi4 (f32x4.splat (local.get $hi)))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $i))))
        (v128.store (i32.add (local.get $out) (local.get $i))
          (v128.and
            (v128.load (i32.add (local.get $dy) (local.get $i)))
            (v128.and (f32x4.ge (local.get $v) (local.get $lo4)) (f32x4.le (local.get $v) (local.get $hi4)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $s (f32.load (i32.add (local.get $x) (local.get $i))))
        (f32.store (i32.add (local.get $out) (local.get $i))
          (select
            (f32.load (i32.add (local.get $dy) (local.get $i)))
            (f32.const 0)
            (i32.and (f32.ge (local.get $s) (local.get $lo)) (f32.le (local.get $s) (local.get $hi)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $next))))

  ;; dst[j] = sum over r of src[r*width + j], accumulated in float64 in scratch (8*width bytes).
  ;; width % 4 == 0.
  (func (export "sum_rows") (param $src i32) (param $dst i32) (param $rows i32) (param $width i32) (param $scratch i32)
    (call $relu_bias_grad (i32.const 0) (local.get $src) (i32.const 0) (local.get $dst) (local.get $rows) (local.get $width) (local.get $scratch)))

  ;; The gradient of a convolution's fused bias and ReLU, from its output y: dz = y > 0 ? dy : 0 (the
  ;; pre-activation gradient) and db[c] = sum over r of dz[r*C + c], accumulated in float64 in
  ;; scratch (8*C bytes). One pass instead of a ReLU gradient pass and a sum pass. C % 4 == 0.
  ;; With y = 0 (no ReLU) dz is not written and db is the column sum of dy (sum_rows).
  (func $relu_bias_grad (export "relu_bias_grad") (param $y i32) (param $dy i32) (param $dz i32) (param $db i32) (param $rows i32) (param $C i32) (param $scratch i32)
    (local $r i32) (local $i i32) (local $rowBytes i32) (local $s i32) (local $v v128)
    (local.set $rowBytes (i32.shl (local.get $C) (i32.const 2)))
    (memory.fill (local.get $scratch) (i32.const 0) (i32.shl (local.get $C) (i32.const 3)))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $i (i32.const 0))
        (local.set $s (local.get $scratch))
        (block $done
          (loop $next
            (br_if $done (i32.ge_u (local.get $i) (local.get $rowBytes)))
            (local.set $v (v128.load (i32.add (local.get $dy) (local.get $i))))
            (if (local.get $y)
              (then
                (local.set $v
                  (v128.and (local.get $v) (f32x4.gt (v128.load (i32.add (local.get $y) (local.get $i))) (v128.const f32x4 0 0 0 0))))
                (v128.store (i32.add (local.get $dz) (local.get $i)) (local.get $v))))
            (v128.store (local.get $s)
              (f64x2.add (v128.load (local.get $s)) (f64x2.promote_low_f32x4 (local.get $v))))
            (v128.store offset=16 (local.get $s)
              (f64x2.add (v128.load offset=16 (local.get $s))
                (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))
            (local.set $s (i32.add (local.get $s) (i32.const 32)))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $next)))
        (if (local.get $y)
          (then
            (local.set $y (i32.add (local.get $y) (local.get $rowBytes)))
            (local.set $dz (i32.add (local.get $dz) (local.get $rowBytes)))))
        (local.set $dy (i32.add (local.get $dy) (local.get $rowBytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row)))
    (call $store_sums (local.get $scratch) (local.get $db) (local.get $rowBytes)))

  ;; Adds the float32 lanes of v to the four float64 sums at s (32 bytes).
  (func $accumulate (param $s i32) (param $v v128)
    (v128.store (local.get $s) (f64x2.add (v128.load (local.get $s)) (f64x2.promote_low_f32x4 (local.get $v))))
    (v128.store offset=16 (local.get $s)
      (f64x2.add (v128.load offset=16 (local.get $s))
        (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))))

  ;; dst[c] = float32 of the float64 sums at sums[c] (8*C bytes), for the C = bytes/4 channels.
  (func $store_sums (param $sums i32) (param $dst i32) (param $bytes i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $bytes)))
        (v128.store (i32.add (local.get $dst) (local.get $i))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero (v128.load (local.get $sums)))
            (f32x4.demote_f64x2_zero (v128.load offset=16 (local.get $sums)))))
        (local.set $sums (i32.add (local.get $sums) (i32.const 32)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))

  ;; BatchNorm on frozen statistics then a capped ReLU, NHWC, C % 4 == 0:
  ;; out = min(max(x*scale[c] + shift[c], 0), cap) (NaN -> 0), every product and sum rounded to float32.
  (func (export "affine_relu") (param $x i32) (param $scale i32) (param $shift i32) (param $out i32) (param $rows i32) (param $C i32) (param $cap f32)
    (local $r i32) (local $i i32) (local $rowBytes i32) (local $cap4 v128)
    (local.set $cap4 (f32x4.splat (local.get $cap)))
    (local.set $rowBytes (i32.shl (local.get $C) (i32.const 2)))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $i (i32.const 0))
        (block $done
          (loop $next
            (br_if $done (i32.ge_u (local.get $i) (local.get $rowBytes)))
            (v128.store (i32.add (local.get $out) (local.get $i))
              (f32x4.pmin (local.get $cap4)
                (f32x4.pmax (v128.const f32x4 0 0 0 0)
                  (f32x4.add
                    (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $i))) (v128.load (i32.add (local.get $scale) (local.get $i))))
                    (v128.load (i32.add (local.get $shift) (local.get $i)))))))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $next)))
        (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
        (local.set $out (i32.add (local.get $out) (local.get $rowBytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))

;; affine_relu's gradient: z = x*scale + shift as forward, dz = 0 < z <= cap ? dy : 0, dx = dz*scale,
  ;; dzSum[c] = sum of dz and dzCenteredSum[c] = sum of dz*(x - mean[c]). The sums run in float32 over
  ;; blocks of 32 rows (at scratch + 16*C) and are added up in float64 (at scratch) after each block:
  ;; float64 accuracy without promoting every element. Scratch 24*C bytes. C % 4 == 0.
  (func (export "affine_relu_grad") (param $x i32) (param $dy i32) (param $scale i32) (param $shift i32) (param $mean i32)
      (param $dx i32) (param $dzSum i32) (param $dzCenteredSum i32) (param $rows i32) (param $C i32) (param $cap f32) (param $scratch i32)
    (local $r i32) (local $i i32) (local $rowBytes i32) (local $block i32) (local $b i32) (local $cap4 v128) (local $v v128) (local $z v128) (local $dz v128)
    (local.set $cap4 (f32x4.splat (local.get $cap)))
    (local.set $rowBytes (i32.shl (local.get $C) (i32.const 2)))
    (local.set $block (i32.add (local.get $scratch) (i32.shl (local.get $C) (i32.const 4))))
    (memory.fill (local.get $scratch) (i32.const 0) (i32.mul (local.get $C) (i32.const 24)))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $i (i32.const 0))
        (local.set $b (local.get $block))
        (block $done
          (loop $next
            (br_if $done (i32.ge_u (local.get $i) (local.get $rowBytes)))
            (local.set $v (v128.load (i32.add (local.get $x) (local.get $i))))
            (local.set $z
              (f32x4.add (f32x4.mul (local.get $v) (v128.load (i32.add (local.get $scale) (local.get $i)))) (v128.load (i32.add (local.get $shift) (local.get $i)))))
            (local.set $dz
              (v128.and (v128.load (i32.add (local.get $dy) (local.get $i)))
                (v128.and (f32x4.gt (local.get $z) (v128.const f32x4 0 0 0 0)) (f32x4.le (local.get $z) (local.get $cap4)))))
            (v128.store (i32.add (local.get $dx) (local.get $i)) (f32x4.mul (local.get $dz) (v128.load (i32.add (local.get $scale) (local.get $i)))))
            (v128.store (local.get $b) (f32x4.add (v128.load (local.get $b)) (local.get $dz)))
            (v128.store offset=16 (local.get $b)
              (f32x4.add (v128.load offset=16 (local.get $b))
                (f32x4.mul (local.get $dz) (f32x4.sub (local.get $v) (v128.load (i32.add (local.get $mean) (local.get $i)))))))
            (local.set $b (i32.add (local.get $b) (i32.const 32)))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $next)))
        (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
        (local.set $dy (i32.add (local.get $dy) (local.get $rowBytes)))
        (local.set $dx (i32.add (local.get $dx) (local.get $rowBytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (if (i32.or (i32.eqz (i32.and (local.get $r) (i32.const 31))) (i32.eq (local.get $r) (local.get $rows)))
          (then (call $flush_block (local.get $block) (local.get $scratch) (local.get $C))))
        (br $row)))
    ;; The sums interleave per group of 4 channels: dz's 32 bytes, then dz*(x - mean)'s.
    (call $store_sums_strided (local.get $scratch) (local.get $dzSum) (local.get $rowBytes))
    (call $store_sums_strided (i32.add (local.get $scratch) (i32.const 32)) (local.get $dzCenteredSum) (local.get $rowBytes)))

  ;; Adds the float32 block sums (2*C floats) into the float64 sums (2*C doubles) and zeroes the block.
  (func $flush_block (param $block i32) (param $sums i32) (param $C i32)
    (local $i i32) (local $end i32)
    (local.set $end (i32.shl (local.get $C) (i32.const 3)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (call $accumulate (i32.add (local.get $sums) (i32.shl (local.get $i) (i32.const 1))) (v128.load (i32.add (local.get $block) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (memory.fill (local.get $block) (i32.const 0) (local.get $end)))

  ;; $store_sums over sums laid out 64 bytes apart per group of 4 channels.
  (func $store_sums_strided (param $sums i32) (param $dst i32) (param $bytes i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $bytes)))
        (call $store_sums (local.get $sums) (i32.add (local.get $dst) (local.get $i)) (i32.const 16))
        (local.set $sums (i32.add (local.get $sums) (i32.const 64)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))

  ;; One Adam step, float32 operation by operation as tfjs's AdamOptimizer:
  ;; m1 = m*b1 + g*(1-b1); v1 = v*b2 + g*g*(1-b2); w1 = (m1/c1) / (sqrt(v1/c2) + eps) * (-lr) + w
  (func (export "adam")
    (param $w i32) (param $g i32) (param $m i32) (param $v i32) (param $w1 i32) (param $m1 i32) (param $v1 i32) (param $n i32)
    (param $b1 f32) (param $omb1 f32) (param $b2 f32) (param $omb2 f32)
    (param $c1 f32) (param $c2 f32) (param $eps f32) (param $neglr f32)
    (local $i i32) (local $end i32) (local $gv v128) (local $mv v128) (local $vv v128)
    (local $B1 v128) (local $OB1 v128) (local $B2 v128) (local $OB2 v128)
    (local $C1 v128) (local $C2 v128) (local $E v128) (local $L v128)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $B1 (f32x4.splat (local.get $b1)))
    (local.set $OB1 (f32x4.splat (local.get $omb1)))
    (local.set $B2 (f32x4.splat (local.get $b2)))
    (local.set $OB2 (f32x4.splat (local.get $omb2)))
    (local.set $C1 (f32x4.splat (local.get $c1)))
    (local.set $C2 (f32x4.splat (local.get $c2)))
    (local.set $E (f32x4.splat (local.get $eps)))
    (local.set $L (f32x4.splat (local.get $neglr)))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $gv (v128.load (i32.add (local.get $g) (local.get $i))))
        (local.set $mv
          (f32x4.add
            (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $i))) (local.get $B1))
            (f32x4.mul (local.get $gv) (local.get $OB1))))
        (local.set $vv
          (f32x4.add
            (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $i))) (local.get $B2))
            (f32x4.mul (f32x4.mul (local.get $gv) (local.get $gv)) (local.get $OB2))))
        (v128.store (i32.add (local.get $m1) (local.get $i)) (local.get $mv))
        (v128.store (i32.add (local.get $v1) (local.get $i)) (local.get $vv))
        (v128.store (i32.add (local.get $w1) (local.get $i))
          (f32x4.add
            (f32x4.mul
              (f32x4.div
                (f32x4.div (local.get $mv) (local.get $C1))
                (f32x4.add (f32x4.sqrt (f32x4.div (local.get $vv) (local.get $C2))) (local.get $E)))
              (local.get $L))
            (v128.load (i32.add (local.get $w) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $gs (f32.load (i32.add (local.get $g) (local.get $i))))
        (local.set $ms
          (f32.add
            (f32.mul (f32.load (i32.add (local.get $m) (local.get $i))) (local.get $b1))
            (f32.mul (local.get $gs) (local.get $omb1))))
        (local.set $vs
          (f32.add
            (f32.mul (f32.load (i32.add (local.get $v) (local.get $i))) (local.get $b2))
            (f32.mul (f32.mul (local.get $gs) (local.get $gs)) (local.get $omb2))))
        (f32.store (i32.add (local.get $m1) (local.get $i)) (local.get $ms))
        (f32.store (i32.add (local.get $v1) (local.get $i)) (local.get $vs))
        (f32.store (i32.add (local.get $w1) (local.get $i))
          (f32.add
            (f32.mul
              (f32.div
                (f32.div (local.get $ms) (local.get $c1))
                (f32.add (f32.sqrt (f32.div (local.get $vs) (local.get $c2))) (local.get $eps)))
              (local.get $neglr))
            (f32.load (i32.add (local.get $w) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $next))))

  ;; MaxPoolGrad, NHWC, channels % 4 == 0: every window's gradient goes to its first maximum
  ;; (row-major window order), as on the cpu backend; windows of -inf/NaN only get none.
  ;; Pass 1 finds each window's maximum, pass 2 writes dy at the first position holding it and
  ;; 0 elsewhere; with $overlap windows share positions, so pass 2 adds instead of storing.
  ;; $zero clears dx first (needed unless disjoint windows cover every position).
  (func (export "max_pool_grad")
    (param $x i32) (param $dy i32) (param $dx i32)
    (param $batch i32) (param $inH i32) (param $inW i32) (param $C i32) (param $outH i32) (param $outW i32)
    (param $fH i32) (param $fW i32) (param $sH i32) (param $sW i32) (param $pt i32) (param $pl i32)
    (param $overlap i32) (param $zero i32)
    (local $b i32) (local $oh i32) (local $ow i32) (local $ch i32) (local $r i32) (local $c i32)
    (local $rFrom i32) (local $rTo i32) (local $cFrom i32) (local $cTo i32) (local $t i32) (local $off i32)
    (local $cBytes i32) (local $rowBytes i32) (local $image i32)
    (local $best v128) (local $open v128) (local $v v128) (local $m v128) (local $g v128)
    (local.set $cBytes (i32.shl (local.get $C) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $inW) (local.get $cBytes)))
    (if (local.get $zero)
      (then
        (memory.fill (local.get $dx) (i32.const 0)
          (i32.mul (i32.mul (local.get $batch) (local.get $inH)) (local.get $rowBytes)))))
    (block $bDone
      (loop $bNext
        (br_if $bDone (i32.ge_s (local.get $b) (local.get $batch)))
        (local.set $image (i32.mul (i32.mul (local.get $b) (local.get $inH)) (local.get $rowBytes)))
        (local.set $oh (i32.const 0))
        (block $ohDone
          (loop $ohNext
            (br_if $ohDone (i32.ge_s (local.get $oh) (local.get $outH)))
            (local.set $t (i32.sub (i32.mul (local.get $oh) (local.get $sH)) (local.get $pt)))
            (local.set $rFrom (select (local.get $t) (i32.const 0) (i32.gt_s (local.get $t) (i32.const 0))))
            (local.set $rTo (i32.add (local.get $t) (local.get $fH)))
            (local.set $rTo (select (local.get $rTo) (local.get $inH) (i32.lt_s (local.get $rTo) (local.get $inH))))
            (local.set $ow (i32.const 0))
            (block $owDone
              (loop $owNext
                (br_if $owDone (i32.ge_s (local.get $ow) (local.get $outW)))
                (local.set $t (i32.sub (i32.mul (local.get $ow) (local.get $sW)) (local.get $pl)))
                (local.set $cFrom (select (local.get $t) (i32.const 0) (i32.gt_s (local.get $t) (i32.const 0))))
                (local.set $cTo (i32.add (local.get $t) (local.get $fW)))
                (local.set $cTo (select (local.get $cTo) (local.get $inW) (i32.lt_s (local.get $cTo) (local.get $inW))))
                (local.set $ch (i32.const 0))
                (block $chDone
                  (loop $chNext
                    (br_if $chDone (i32.ge_u (local.get $ch) (local.get $cBytes)))
                    (local.set $best (v128.const f32x4 -inf -inf -inf -inf))
                    (local.set $r (local.get $rFrom))
                    (block $rDone
                      (loop $rNext
                        (br_if $rDone (i32.ge_s (local.get $r) (local.get $rTo)))
                        (local.set $c (local.get $cFrom))
                        (local.set $off
                          (i32.add (i32.add (local.get $image) (i32.mul (local.get $r) (local.get $rowBytes)))
                            (i32.add (i32.mul (local.get $c) (local.get $cBytes)) (local.get $ch))))
                        (block $cDone
                          (loop $cNext
                            (br_if $cDone (i32.ge_s (local.get $c) (local.get $cTo)))
                            (local.set $best (f32x4.pmax (local.get $best) (v128.load (i32.add (local.get $x) (local.get $off)))))
                            (local.set $off (i32.add (local.get $off) (local.get $cBytes)))
                            (local.set $c (i32.add (local.get $c) (i32.const 1)))
                            (br $cNext)))
                        (local.set $r (i32.add (local.get $r) (i32.const 1)))
                        (br $rNext)))
                    (local.set $g (v128.load (local.get $dy)))
                    ;; lanes still waiting for their first maximum; none for an all -inf/NaN window
                    (local.set $open (f32x4.gt (local.get $best) (v128.const f32x4 -inf -inf -inf -inf)))
                    (local.set $r (local.get $rFrom))
                    (block $rDone
                      (loop $rNext
                        (br_if $rDone (i32.ge_s (local.get $r) (local.get $rTo)))
                        (local.set $c (local.get $cFrom))
                        (local.set $off
                          (i32.add (i32.add (local.get $image) (i32.mul (local.get $r) (local.get $rowBytes)))
                            (i32.add (i32.mul (local.get $c) (local.get $cBytes)) (local.get $ch))))
                        (block $cDone
                          (loop $cNext
                            (br_if $cDone (i32.ge_s (local.get $c) (local.get $cTo)))
                            (local.set $m
                              (v128.and (local.get $open)
                                (f32x4.eq (v128.load (i32.add (local.get $x) (local.get $off))) (local.get $best))))
                            (local.set $t (i32.add (local.get $dx) (local.get $off)))
                            (if (local.get $overlap)
                              (then
                                (v128.store (local.get $t)
                                  (f32x4.add (v128.load (local.get $t)) (v128.and (local.get $g) (local.get $m)))))
                              (else (v128.store (local.get $t) (v128.and (local.get $g) (local.get $m)))))
                            (local.set $open (v128.andnot (local.get $open) (local.get $m)))
                            (local.set $off (i32.add (local.get $off) (local.get $cBytes)))
                            (local.set $c (i32.add (local.get $c) (i32.const 1)))
                            (br $cNext)))
                        (local.set $r (i32.add (local.get $r) (i32.const 1)))
                        (br $rNext)))
                    (local.set $dy (i32.add (local.get $dy) (i32.const 16)))
                    (local.set $ch (i32.add (local.get $ch) (i32.const 16)))
                    (br $chNext)))
                (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
                (br $owNext)))
            (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
            (br $ohNext)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bNext))))

  ;; col2im (NHWC): over every (b, oh, ow) row and (kh, kw, c) column of the patch matrix,
  ;; x[b, oh*sH - pt + kh*dH, ow*sW - pl + kw*dW, c] += cols[row, col] inside x; x is zeroed first.
  (func (export "col2im")
    (param $x i32) (param $cols i32) (param $batch i32) (param $inH i32) (param $inW i32) (param $C i32)
    (param $outH i32) (param $outW i32) (param $KH i32) (param $KW i32) (param $sH i32) (param $sW i32)
    (param $dH i32) (param $dW i32) (param $pt i32) (param $pl i32)
    (local $b i32) (local $oh i32) (local $ow i32) (local $kh i32) (local $kw i32) (local $ih i32) (local $iw i32)
    (local $p i32) (local $i i32) (local $cBytes i32) (local $vecEnd i32)
    (local.set $cBytes (i32.shl (local.get $C) (i32.const 2)))
    (local.set $vecEnd (i32.shl (i32.and (local.get $C) (i32.const -4)) (i32.const 2)))
    (memory.fill (local.get $x) (i32.const 0)
      (i32.mul (i32.mul (i32.mul (local.get $batch) (local.get $inH)) (local.get $inW)) (local.get $cBytes)))
    (block $bDone
      (loop $bNext
        (br_if $bDone (i32.ge_s (local.get $b) (local.get $batch)))
        (local.set $oh (i32.const 0))
        (block $ohDone
          (loop $ohNext
            (br_if $ohDone (i32.ge_s (local.get $oh) (local.get $outH)))
            (local.set $ow (i32.const 0))
            (block $owDone
              (loop $owNext
                (br_if $owDone (i32.ge_s (local.get $ow) (local.get $outW)))
                (local.set $kh (i32.const 0))
                (block $khDone
                  (loop $khNext
                    (br_if $khDone (i32.ge_s (local.get $kh) (local.get $KH)))
                    (local.set $ih
                      (i32.add (i32.sub (i32.mul (local.get $oh) (local.get $sH)) (local.get $pt))
                        (i32.mul (local.get $kh) (local.get $dH))))
                    (local.set $kw (i32.const 0))
                    (block $kwDone
                      (loop $kwNext
                        (br_if $kwDone (i32.ge_s (local.get $kw) (local.get $KW)))
                        (local.set $iw
                          (i32.add (i32.sub (i32.mul (local.get $ow) (local.get $sW)) (local.get $pl))
                            (i32.mul (local.get $kw) (local.get $dW))))
                        (if (i32.and (i32.lt_u (local.get $ih) (local.get $inH)) (i32.lt_u (local.get $iw) (local.get $inW)))
                          (then
                            (local.set $p
                              (i32.add (local.get $x)
                                (i32.mul
                                  (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $inH)) (local.get $ih)) (local.get $inW))
                                    (local.get $iw))
                                  (local.get $cBytes))))
                            (local.set $i (i32.const 0))
                            (block $vDone
                              (loop $vNext
                                (br_if $vDone (i32.ge_u (local.get $i) (local.get $vecEnd)))
                                (v128.store (i32.add (local.get $p) (local.get $i))
                                  (f32x4.add (v128.load (i32.add (local.get $p) (local.get $i)))
                                    (v128.load (i32.add (local.get $cols) (local.get $i)))))
                                (local.set $i (i32.add (local.get $i) (i32.const 16)))
                                (br $vNext)))
                            (block $sDone
                              (loop $sNext
                                (br_if $sDone (i32.ge_u (local.get $i) (local.get $cBytes)))
                                (f32.store (i32.add (local.get $p) (local.get $i))
                                  (f32.add (f32.load (i32.add (local.get $p) (local.get $i)))
                                    (f32.load (i32.add (local.get $cols) (local.get $i)))))
                                (local.set $i (i32.add (local.get $i) (i32.const 4)))
                                (br $sNext)))))
                        (local.set $cols (i32.add (local.get $cols) (local.get $cBytes)))
                        (local.set $kw (i32.add (local.get $kw) (i32.const 1)))
                        (br $kwNext)))
                    (local.set $kh (i32.add (local.get $kh) (i32.const 1)))
                    (br $khNext)))
                (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
                (br $owNext)))
            (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
            (br $ohNext)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bNext))))

  ;; Depthwise filter gradient (NHWC, channel multiplier 1, C % 4 == 0):
  ;; dw[kh, kw, c] = sum over b, oh, ow of x[b, oh*sH - pt + kh*dH, ow*sW - pl + kw*dWd, c] * dy[b, oh, ow, c].
  ;; Per (image row, tap) the sum over ow runs in registers, 16 channels (then 4) at a time.
  (func (export "depthwise_filter_grad")
    (param $x i32) (param $dy i32) (param $dw i32) (param $batch i32) (param $inH i32) (param $inW i32) (param $C i32)
    (param $outH i32) (param $outW i32) (param $KH i32) (param $KW i32) (param $sH i32) (param $sW i32)
    (param $dH i32) (param $dWd i32) (param $pt i32) (param $pl i32)
    (local $b i32) (local $oh i32) (local $kh i32) (local $kw i32) (local $ih i32) (local $ow i32) (local $j i32)
    (local $cBytes i32) (local $xRow i32) (local $dyRow i32) (local $xp i32) (local $dp i32) (local $xStep i32)
    (local $iw0 i32) (local $wp i32) (local $end16 i32) (local $owFrom i32) (local $owTo i32) (local $t i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $cBytes (i32.shl (local.get $C) (i32.const 2)))
    (local.set $xStep (i32.mul (local.get $sW) (local.get $cBytes)))
    (local.set $end16 (i32.shl (i32.and (local.get $C) (i32.const -16)) (i32.const 2)))
    (memory.fill (local.get $dw) (i32.const 0) (i32.mul (i32.mul (local.get $KH) (local.get $KW)) (local.get $cBytes)))
    (block $bDone
      (loop $bNext
        (br_if $bDone (i32.ge_s (local.get $b) (local.get $batch)))
        (local.set $oh (i32.const 0))
        (block $ohDone
          (loop $ohNext
            (br_if $ohDone (i32.ge_s (local.get $oh) (local.get $outH)))
            (local.set $dyRow
              (i32.add (local.get $dy)
                (i32.mul (i32.mul (i32.add (i32.mul (local.get $b) (local.get $outH)) (local.get $oh)) (local.get $outW))
                  (local.get $cBytes))))
            (local.set $kh (i32.const 0))
            (block $khDone
              (loop $khNext
                (br_if $khDone (i32.ge_s (local.get $kh) (local.get $KH)))
                (local.set $ih
                  (i32.add (i32.sub (i32.mul (local.get $oh) (local.get $sH)) (local.get $pt))
                    (i32.mul (local.get $kh) (local.get $dH))))
                (if (i32.lt_u (local.get $ih) (local.get $inH))
                  (then
                    (local.set $xRow
                      (i32.add (local.get $x)
                        (i32.mul (i32.mul (i32.add (i32.mul (local.get $b) (local.get $inH)) (local.get $ih)) (local.get $inW))
                          (local.get $cBytes))))
                    (local.set $kw (i32.const 0))
                    (block $kwDone
                      (loop $kwNext
                        (br_if $kwDone (i32.ge_s (local.get $kw) (local.get $KW)))
                        (local.set $iw0 (i32.sub (i32.mul (local.get $kw) (local.get $dWd)) (local.get $pl)))
                        ;; outputs whose column iw0 + ow*sW lies inside the input: owFrom <= ow < owTo
                        (local.set $owFrom
                          (select (i32.const 0)
                            (i32.div_u (i32.sub (i32.add (i32.sub (i32.const 0) (local.get $iw0)) (local.get $sW)) (i32.const 1))
                              (local.get $sW))
                            (i32.ge_s (local.get $iw0) (i32.const 0))))
                        (local.set $t (i32.sub (i32.sub (local.get $inW) (i32.const 1)) (local.get $iw0)))
                        (local.set $owTo
                          (select (i32.const 0)
                            (i32.add (i32.div_u (local.get $t) (local.get $sW)) (i32.const 1))
                            (i32.lt_s (local.get $t) (i32.const 0))))
                        (local.set $owTo
                          (select (local.get $owTo) (local.get $outW) (i32.lt_s (local.get $owTo) (local.get $outW))))
                        (local.set $wp
                          (i32.add (local.get $dw)
                            (i32.mul (i32.add (i32.mul (local.get $kh) (local.get $KW)) (local.get $kw)) (local.get $cBytes))))
                        (local.set $j (i32.const 0))
                        (block $blockDone
                          (loop $blockNext
                            (br_if $blockDone (i32.ge_u (local.get $j) (local.get $end16)))
                            (local.set $a0 (v128.const i32x4 0 0 0 0))
                            (local.set $a1 (v128.const i32x4 0 0 0 0))
                            (local.set $a2 (v128.const i32x4 0 0 0 0))
                            (local.set $a3 (v128.const i32x4 0 0 0 0))
                            (local.set $xp
                              (i32.add (i32.add (local.get $xRow) (local.get $j))
                                (i32.mul (i32.add (local.get $iw0) (i32.mul (local.get $owFrom) (local.get $sW))) (local.get $cBytes))))
                            (local.set $dp
                              (i32.add (i32.add (local.get $dyRow) (local.get $j)) (i32.mul (local.get $owFrom) (local.get $cBytes))))
                            (local.set $ow (local.get $owFrom))
                            (block $owDone
                              (loop $owNext
                                (br_if $owDone (i32.ge_s (local.get $ow) (local.get $owTo)))
                                (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $xp)) (v128.load (local.get $dp)))))
                                (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=16 (local.get $xp)) (v128.load offset=16 (local.get $dp)))))
                                (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=32 (local.get $xp)) (v128.load offset=32 (local.get $dp)))))
                                (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=48 (local.get $xp)) (v128.load offset=48 (local.get $dp)))))
                                (local.set $xp (i32.add (local.get $xp) (local.get $xStep)))
                                (local.set $dp (i32.add (local.get $dp) (local.get $cBytes)))
                                (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
                                (br $owNext)))
                            (local.set $t (i32.add (local.get $wp) (local.get $j)))
                            (v128.store (local.get $t) (f32x4.add (v128.load (local.get $t)) (local.get $a0)))
                            (v128.store offset=16 (local.get $t) (f32x4.add (v128.load offset=16 (local.get $t)) (local.get $a1)))
                            (v128.store offset=32 (local.get $t) (f32x4.add (v128.load offset=32 (local.get $t)) (local.get $a2)))
                            (v128.store offset=48 (local.get $t) (f32x4.add (v128.load offset=48 (local.get $t)) (local.get $a3)))
                            (local.set $j (i32.add (local.get $j) (i32.const 64)))
                            (br $blockNext)))
                        (block $vecDone
                          (loop $vecNext
                            (br_if $vecDone (i32.ge_u (local.get $j) (local.get $cBytes)))
                            (local.set $a0 (v128.const i32x4 0 0 0 0))
                            (local.set $xp
                              (i32.add (i32.add (local.get $xRow) (local.get $j))
                                (i32.mul (i32.add (local.get $iw0) (i32.mul (local.get $owFrom) (local.get $sW))) (local.get $cBytes))))
                            (local.set $dp
                              (i32.add (i32.add (local.get $dyRow) (local.get $j)) (i32.mul (local.get $owFrom) (local.get $cBytes))))
                            (local.set $ow (local.get $owFrom))
                            (block $owDone
                              (loop $owNext
                                (br_if $owDone (i32.ge_s (local.get $ow) (local.get $owTo)))
                                (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $xp)) (v128.load (local.get $dp)))))
                                (local.set $xp (i32.add (local.get $xp) (local.get $xStep)))
                                (local.set $dp (i32.add (local.get $dp) (local.get $cBytes)))
                                (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
                                (br $owNext)))
                            (local.set $t (i32.add (local.get $wp) (local.get $j)))
                            (v128.store (local.get $t) (f32x4.add (v128.load (local.get $t)) (local.get $a0)))
                            (local.set $j (i32.add (local.get $j) (i32.const 16)))
                            (br $vecNext)))
                        (local.set $kw (i32.add (local.get $kw) (i32.const 1)))
                        (br $kwNext)))))
                (local.set $kh (i32.add (local.get $kh) (i32.const 1)))
                (br $khNext)))
            (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
            (br $ohNext)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bNext))))
  ;; Depthwise input gradient (NHWC, channel multiplier 1, C % 4 == 0), gathered per input pixel:
  ;; dx[b, ih, iw, c] = sum over the taps that reach it of dy[b, oh, ow, c] * w[kh, kw, c].
  ;; $rows holds, per input row ih, [count, kh, oh, kh, oh, ...] (stride 1 + 2*KH i32) and $cols
  ;; the same per input column (stride 1 + 2*KW): the strides, dilations and padding live there.
  (func (export "depthwise_input_grad")
    (param $dy i32) (param $w i32) (param $dx i32) (param $rows i32) (param $cols i32)
    (param $batch i32) (param $inH i32) (param $inW i32) (param $C i32) (param $outH i32) (param $outW i32)
    (param $KH i32) (param $KW i32)
    (local $b i32) (local $ih i32) (local $iw i32) (local $j i32) (local $ri i32) (local $ci i32)
    (local $rp i32) (local $cp i32) (local $rn i32) (local $cn i32) (local $cBytes i32) (local $end16 i32)
    (local $rowBase i32) (local $wRow i32) (local $dp i32) (local $wp i32) (local $t i32) (local $image i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $cBytes (i32.shl (local.get $C) (i32.const 2)))
    (local.set $end16 (i32.shl (i32.and (local.get $C) (i32.const -16)) (i32.const 2)))
    (block $bDone
      (loop $bNext
        (br_if $bDone (i32.ge_s (local.get $b) (local.get $batch)))
        (local.set $image (i32.add (local.get $dy)
          (i32.mul (i32.mul (i32.mul (local.get $b) (local.get $outH)) (local.get $outW)) (local.get $cBytes))))
        (local.set $ih (i32.const 0))
        (block $ihDone
          (loop $ihNext
            (br_if $ihDone (i32.ge_s (local.get $ih) (local.get $inH)))
            (local.set $rp (i32.add (local.get $rows)
              (i32.shl (i32.mul (local.get $ih) (i32.add (i32.shl (local.get $KH) (i32.const 1)) (i32.const 1))) (i32.const 2))))
            (local.set $rn (i32.load (local.get $rp)))
            (local.set $iw (i32.const 0))
            (block $iwDone
              (loop $iwNext
                (br_if $iwDone (i32.ge_s (local.get $iw) (local.get $inW)))
                (local.set $cp (i32.add (local.get $cols)
                  (i32.shl (i32.mul (local.get $iw) (i32.add (i32.shl (local.get $KW) (i32.const 1)) (i32.const 1))) (i32.const 2))))
                (local.set $cn (i32.load (local.get $cp)))
                (local.set $j (i32.const 0))
                (block $blockDone
                  (loop $blockNext
                    (br_if $blockDone (i32.ge_u (local.get $j) (local.get $end16)))
                    (local.set $a0 (v128.const i32x4 0 0 0 0))
                    (local.set $a1 (v128.const i32x4 0 0 0 0))
                    (local.set $a2 (v128.const i32x4 0 0 0 0))
                    (local.set $a3 (v128.const i32x4 0 0 0 0))
                    (local.set $ri (i32.const 0))
                    (block $rDone
                      (loop $rNext
                        (br_if $rDone (i32.ge_s (local.get $ri) (local.get $rn)))
                        (local.set $t (i32.add (local.get $rp) (i32.shl (local.get $ri) (i32.const 3))))
                        (local.set $wRow (i32.add (i32.add (local.get $w) (local.get $j))
                          (i32.mul (i32.mul (i32.load offset=4 (local.get $t)) (local.get $KW)) (local.get $cBytes))))
                        (local.set $rowBase (i32.add (i32.add (local.get $image) (local.get $j))
                          (i32.mul (i32.mul (i32.load offset=8 (local.get $t)) (local.get $outW)) (local.get $cBytes))))
                        (local.set $ci (i32.const 0))
                        (block $cDone
                          (loop $cNext
                            (br_if $cDone (i32.ge_s (local.get $ci) (local.get $cn)))
                            (local.set $t (i32.add (local.get $cp) (i32.shl (local.get $ci) (i32.const 3))))
                            (local.set $wp (i32.add (local.get $wRow) (i32.mul (i32.load offset=4 (local.get $t)) (local.get $cBytes))))
                            (local.set $dp (i32.add (local.get $rowBase) (i32.mul (i32.load offset=8 (local.get $t)) (local.get $cBytes))))
                            (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $dp)) (v128.load (local.get $wp)))))
                            (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=16 (local.get $dp)) (v128.load offset=16 (local.get $wp)))))
                            (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=32 (local.get $dp)) (v128.load offset=32 (local.get $wp)))))
                            (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=48 (local.get $dp)) (v128.load offset=48 (local.get $wp)))))
                            (local.set $ci (i32.add (local.get $ci) (i32.const 1)))
                            (br $cNext)))
                        (local.set $ri (i32.add (local.get $ri) (i32.const 1)))
                        (br $rNext)))
                    (local.set $t (i32.add (local.get $dx) (local.get $j)))
                    (v128.store (local.get $t) (local.get $a0))
                    (v128.store offset=16 (local.get $t) (local.get $a1))
                    (v128.store offset=32 (local.get $t) (local.get $a2))
                    (v128.store offset=48 (local.get $t) (local.get $a3))
                    (local.set $j (i32.add (local.get $j) (i32.const 64)))
                    (br $blockNext)))
                (block $vecDone
                  (loop $vecNext
                    (br_if $vecDone (i32.ge_u (local.get $j) (local.get $cBytes)))
                    (local.set $a0 (v128.const i32x4 0 0 0 0))
                    (local.set $ri (i32.const 0))
                    (block $rDone
                      (loop $rNext
                        (br_if $rDone (i32.ge_s (local.get $ri) (local.get $rn)))
                        (local.set $t (i32.add (local.get $rp) (i32.shl (local.get $ri) (i32.const 3))))
                        (local.set $wRow (i32.add (i32.add (local.get $w) (local.get $j))
                          (i32.mul (i32.mul (i32.load offset=4 (local.get $t)) (local.get $KW)) (local.get $cBytes))))
                        (local.set $rowBase (i32.add (i32.add (local.get $image) (local.get $j))
                          (i32.mul (i32.mul (i32.load offset=8 (local.get $t)) (local.get $outW)) (local.get $cBytes))))
                        (local.set $ci (i32.const 0))
                        (block $cDone
                          (loop $cNext
                            (br_if $cDone (i32.ge_s (local.get $ci) (local.get $cn)))
                            (local.set $t (i32.add (local.get $cp) (i32.shl (local.get $ci) (i32.const 3))))
                            (local.set $wp (i32.add (local.get $wRow) (i32.mul (i32.load offset=4 (local.get $t)) (local.get $cBytes))))
                            (local.set $dp (i32.add (local.get $rowBase) (i32.mul (i32.load offset=8 (local.get $t)) (local.get $cBytes))))
                            (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $dp)) (v128.load (local.get $wp)))))
                            (local.set $ci (i32.add (local.get $ci) (i32.const 1)))
                            (br $cNext)))
                        (local.set $ri (i32.add (local.get $ri) (i32.const 1)))
                        (br $rNext)))
                    (v128.store (i32.add (local.get $dx) (local.get $j)) (local.get $a0))
                    (local.set $j (i32.add (local.get $j) (i32.const 16)))
                    (br $vecNext)))
                (local.set $dx (i32.add (local.get $dx) (local.get $cBytes)))
                (local.set $iw (i32.add (local.get $iw) (i32.const 1)))
                (br $iwNext)))
            (local.set $ih (i32.add (local.get $ih) (i32.const 1)))
            (br $ihNext)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bNext))))

  ;; Stores the 4x4 block whose rows are v0..v3 transposed: its column j (v0[j] v1[j] v2[j] v3[j])
  ;; at dst + j * stride. t0 = v0.0 v1.0 v0.1 v1.1 and t1 = v0.2 v1.2 v0.3 v1.3 (t2, t3 the same of v2, v3).
  (func $store_transposed_4x4 (param $v0 v128) (param $v1 v128) (param $v2 v128) (param $v3 v128) (param $dst i32) (param $stride i32)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v0) (local.get $v1)))
    (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v0) (local.get $v1)))
    (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v2) (local.get $v3)))
    (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v2) (local.get $v3)))
    (v128.store (local.get $dst) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
    (v128.store (i32.add (local.get $dst) (local.get $stride))
      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
    (v128.store (i32.add (local.get $dst) (i32.shl (local.get $stride) (i32.const 1)))
      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
    (v128.store (i32.add (local.get $dst) (i32.mul (local.get $stride) (i32.const 3)))
      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3))))

  ;; Transposed patch matrix for a convolution's filter gradient (NHWC x): row (kh*KW + kw)*C + c,
  ;; column ((b - bFrom)*outH + oh)*outW + ow holds x[b, oh*sH - pt + kh*dH, ow*sW - pl + kw*dW, c],
  ;; 0 outside x, for b in [bFrom, bTo). Its columns are dy's rows, so dW = this . dy needs no
  ;; other transpose. For stride 1 and C % 4 == 0, 4x4 blocks (4 pixels x 4 channels) are
  ;; transposed in registers; everything else is copied one value at a time.
  (func (export "im2col_t")
    (param $x i32) (param $out i32) (param $C i32) (param $inH i32) (param $inW i32)
    (param $outH i32) (param $outW i32) (param $KH i32) (param $KW i32) (param $sH i32) (param $sW i32)
    (param $dH i32) (param $dW i32) (param $pt i32) (param $pl i32) (param $bFrom i32) (param $bTo i32)
    (local $b i32) (local $oh i32) (local $kh i32) (local $kw i32) (local $ih i32) (local $iw0 i32)
    (local $ow i32) (local $c i32) (local $owFrom i32) (local $owTo i32) (local $owVec i32)
    (local $rowBytes i32) (local $cBytes i32) (local $pixel i32) (local $dst i32) (local $src i32) (local $block i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    ;; bytes between consecutive rows of the output (its column count * 4)
    (local.set $rowBytes (i32.shl (i32.mul (i32.mul (i32.sub (local.get $bTo) (local.get $bFrom)) (local.get $outH)) (local.get $outW)) (i32.const 2)))
    (local.set $cBytes (i32.shl (local.get $C) (i32.const 2)))
    (local.set $b (local.get $bFrom))
    (block $bDone
      (loop $bNext
        (br_if $bDone (i32.ge_s (local.get $b) (local.get $bTo)))
        (local.set $oh (i32.const 0))
        (block $ohDone
          (loop $ohNext
            (br_if $ohDone (i32.ge_s (local.get $oh) (local.get $outH)))
            (local.set $kh (i32.const 0))
            (block $khDone
              (loop $khNext
                (br_if $khDone (i32.ge_s (local.get $kh) (local.get $KH)))
                (local.set $ih (i32.add (i32.sub (i32.mul (local.get $oh) (local.get $sH)) (local.get $pt))
                  (i32.mul (local.get $kh) (local.get $dH))))
                (local.set $kw (i32.const 0))
                (block $kwDone
                  (loop $kwNext
                    (br_if $kwDone (i32.ge_s (local.get $kw) (local.get $KW)))
                    ;; valid ow: 0 <= ow*sW + iw0 < inW, and none when row ih is outside x
                    (local.set $iw0 (i32.sub (i32.mul (local.get $kw) (local.get $dW)) (local.get $pl)))
                    (local.set $owFrom (i32.const 0))
                    (if (i32.lt_s (local.get $iw0) (i32.const 0))
                      (then (local.set $owFrom
                        (i32.div_s (i32.add (i32.sub (i32.const 0) (local.get $iw0)) (i32.sub (local.get $sW) (i32.const 1))) (local.get $sW)))))
                    (local.set $owTo (i32.const 0))
                    (if (i32.lt_s (local.get $iw0) (local.get $inW))
                      (then (local.set $owTo
                        (i32.add (i32.div_s (i32.sub (i32.sub (local.get $inW) (i32.const 1)) (local.get $iw0)) (local.get $sW)) (i32.const 1)))))
                    (if (i32.gt_s (local.get $owTo) (local.get $outW)) (then (local.set $owTo (local.get $outW))))
                    (if (i32.ge_u (local.get $ih) (local.get $inH)) (then (local.set $owTo (i32.const 0))))
                    (if (i32.gt_s (local.get $owFrom) (local.get $owTo)) (then (local.set $owFrom (local.get $owTo))))
                    ;; output element (row of channel 0, column of ow 0)
                    (local.set $block (i32.add (local.get $out)
                      (i32.add
                        (i32.mul (i32.mul (i32.add (i32.mul (local.get $kh) (local.get $KW)) (local.get $kw)) (local.get $C)) (local.get $rowBytes))
                        (i32.shl (i32.mul (i32.add (i32.mul (i32.sub (local.get $b) (local.get $bFrom)) (local.get $outH)) (local.get $oh)) (local.get $outW)) (i32.const 2)))))
                    ;; x[b, ih, 0, 0]
                    (local.set $pixel (i32.add (local.get $x)
                      (i32.mul (i32.add (i32.mul (local.get $b) (local.get $inH)) (local.get $ih)) (i32.mul (local.get $inW) (local.get $cBytes)))))
                    (local.set $owVec (local.get $owFrom))
                    (if (i32.and (i32.eq (local.get $sW) (i32.const 1)) (i32.eqz (i32.and (local.get $C) (i32.const 3))))
                      (then
                        (local.set $owVec (i32.add (local.get $owFrom)
                          (i32.and (i32.sub (local.get $owTo) (local.get $owFrom)) (i32.const -4))))
                        (local.set $ow (local.get $owFrom))
                        (block $vDone
                          (loop $vNext
                            (br_if $vDone (i32.ge_s (local.get $ow) (local.get $owVec)))
                            (local.set $src (i32.add (local.get $pixel) (i32.mul (i32.add (local.get $ow) (local.get $iw0)) (local.get $cBytes))))
                            (local.set $dst (i32.add (local.get $block) (i32.shl (local.get $ow) (i32.const 2))))
                            (local.set $c (i32.const 0))
                            (block $cDone
                              (loop $cNext
                                (br_if $cDone (i32.ge_s (local.get $c) (local.get $C)))
                                (local.set $v0 (v128.load (local.get $src)))
                                (local.set $v1 (v128.load (i32.add (local.get $src) (local.get $cBytes))))
                                (local.set $v2 (v128.load (i32.add (local.get $src) (i32.shl (local.get $cBytes) (i32.const 1)))))
                                (local.set $v3 (v128.load (i32.add (local.get $src) (i32.mul (local.get $cBytes) (i32.const 3)))))
                                (call $store_transposed_4x4 (local.get $v0) (local.get $v1) (local.get $v2) (local.get $v3) (local.get $dst) (local.get $rowBytes))
                                (local.set $src (i32.add (local.get $src) (i32.const 16)))
                                (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $rowBytes) (i32.const 2))))
                                (local.set $c (i32.add (local.get $c) (i32.const 4)))
                                (br $cNext)))
                            (local.set $ow (i32.add (local.get $ow) (i32.const 4)))
                            (br $vNext)))))
                    ;; one value at a time: zeros before owFrom, the rest of the valid run, zeros after owTo
                    (local.set $c (i32.const 0))
                    (block $cDone
                      (loop $cNext
                        (br_if $cDone (i32.ge_s (local.get $c) (local.get $C)))
                        (local.set $dst (i32.add (local.get $block) (i32.mul (local.get $c) (local.get $rowBytes))))
                        (local.set $ow (i32.const 0))
                        (block $zDone
                          (loop $zNext
                            (br_if $zDone (i32.ge_s (local.get $ow) (local.get $owFrom)))
                            (f32.store (i32.add (local.get $dst) (i32.shl (local.get $ow) (i32.const 2))) (f32.const 0))
                            (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
                            (br $zNext)))
                        (local.set $ow (local.get $owVec))
                        (block $sDone
                          (loop $sNext
                            (br_if $sDone (i32.ge_s (local.get $ow) (local.get $owTo)))
                            (f32.store (i32.add (local.get $dst) (i32.shl (local.get $ow) (i32.const 2)))
                              (f32.load (i32.add (local.get $pixel)
                                (i32.add (i32.mul (i32.add (i32.mul (local.get $ow) (local.get $sW)) (local.get $iw0)) (local.get $cBytes))
                                  (i32.shl (local.get $c) (i32.const 2))))))
                            (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
                            (br $sNext)))
                        (block $zDone
                          (loop $zNext
                            (br_if $zDone (i32.ge_s (local.get $ow) (local.get $outW)))
                            (f32.store (i32.add (local.get $dst) (i32.shl (local.get $ow) (i32.const 2))) (f32.const 0))
                            (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
                            (br $zNext)))
                        (local.set $c (i32.add (local.get $c) (i32.const 1)))
                        (br $cNext)))
                    (local.set $kw (i32.add (local.get $kw) (i32.const 1)))
                    (br $kwNext)))
                (local.set $kh (i32.add (local.get $kh) (i32.const 1)))
                (br $khNext)))
            (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
            (br $ohNext)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bNext))))

  ;; 3x3 convolution of a one-channel NHWC image (the first layer of grayscale models), dilation 1,
  ;; no padding (the caller pads), Co % 4 == 0: out[b, oh, ow, co] = max(floor, bias[co] + sum over
  ;; kh, kw of x[b, oh*sH + kh, ow*sW + kw] * w[kh, kw, co]); floor 0 is a fused ReLU, -inf none.
  ;; XNNPACK runs this as a 9-deep matrix product at ~7 GFLOP/s; here the 9 input values of a pixel
  ;; are broadcast once and reused for every 4 channels.
  (func (export "conv2d_c1")
    (param $x i32) (param $w i32) (param $out i32) (param $B i32) (param $inH i32) (param $inW i32)
    (param $outH i32) (param $outW i32) (param $Co i32) (param $sH i32) (param $sW i32) (param $bias i32) (param $floor f32)
    (local $b i32) (local $oh i32) (local $ow i32) (local $co i32) (local $coBytes i32) (local $p i32) (local $row i32) (local $wp i32)
    (local $t0 i32) (local $t1 i32) (local $t2 i32) (local $t3 i32) (local $t4 i32) (local $t5 i32) (local $t6 i32) (local $t7 i32) (local $t8 i32)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128) (local $s4 v128) (local $s5 v128) (local $s6 v128) (local $s7 v128) (local $s8 v128)
    (local $lo v128)
    (local.set $lo (f32x4.splat (local.get $floor)))
    (local.set $coBytes (i32.shl (local.get $Co) (i32.const 2)))
    (local.set $t0 (i32.mul (local.get $coBytes) (i32.const 0)))
    (local.set $t1 (i32.mul (local.get $coBytes) (i32.const 1)))
    (local.set $t2 (i32.mul (local.get $coBytes) (i32.const 2)))
    (local.set $t3 (i32.mul (local.get $coBytes) (i32.const 3)))
    (local.set $t4 (i32.mul (local.get $coBytes) (i32.const 4)))
    (local.set $t5 (i32.mul (local.get $coBytes) (i32.const 5)))
    (local.set $t6 (i32.mul (local.get $coBytes) (i32.const 6)))
    (local.set $t7 (i32.mul (local.get $coBytes) (i32.const 7)))
    (local.set $t8 (i32.mul (local.get $coBytes) (i32.const 8)))
    (block $bDone
      (loop $bNext
        (br_if $bDone (i32.ge_s (local.get $b) (local.get $B)))
        (local.set $oh (i32.const 0))
        (block $ohDone
          (loop $ohNext
            (br_if $ohDone (i32.ge_s (local.get $oh) (local.get $outH)))
            ;; x[b, oh*sH, 0]
            (local.set $row (i32.add (local.get $x)
              (i32.shl (i32.mul (i32.add (i32.mul (local.get $b) (local.get $inH)) (i32.mul (local.get $oh) (local.get $sH))) (local.get $inW)) (i32.const 2))))
            (local.set $ow (i32.const 0))
            (block $owDone
              (loop $owNext
                (br_if $owDone (i32.ge_s (local.get $ow) (local.get $outW)))
                (local.set $p (i32.add (local.get $row) (i32.shl (i32.mul (local.get $ow) (local.get $sW)) (i32.const 2))))
                (local.set $s0 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 0) (local.get $inW)) (i32.const 0)) (i32.const 2)))))
                (local.set $s1 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 0) (local.get $inW)) (i32.const 1)) (i32.const 2)))))
                (local.set $s2 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 0) (local.get $inW)) (i32.const 2)) (i32.const 2)))))
                (local.set $s3 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 1) (local.get $inW)) (i32.const 0)) (i32.const 2)))))
                (local.set $s4 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 1) (local.get $inW)) (i32.const 1)) (i32.const 2)))))
                (local.set $s5 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 1) (local.get $inW)) (i32.const 2)) (i32.const 2)))))
                (local.set $s6 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 2) (local.get $inW)) (i32.const 0)) (i32.const 2)))))
                (local.set $s7 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 2) (local.get $inW)) (i32.const 1)) (i32.const 2)))))
                (local.set $s8 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 2) (local.get $inW)) (i32.const 2)) (i32.const 2)))))
                (local.set $co (i32.const 0))
                (block $coDone
                  (loop $coNext
                    (br_if $coDone (i32.ge_u (local.get $co) (local.get $coBytes)))
                    (local.set $wp (i32.add (local.get $w) (local.get $co)))
                    (v128.store (local.get $out) (f32x4.pmax (local.get $lo) (f32x4.add (v128.load (i32.add (local.get $bias) (local.get $co)))
                      (f32x4.add (f32x4.add (f32x4.add (f32x4.add (f32x4.add (f32x4.add (f32x4.add (f32x4.add (f32x4.mul (local.get $s0) (v128.load offset=0 (i32.add (local.get $wp) (local.get $t0))))
                      (f32x4.mul (local.get $s1) (v128.load offset=0 (i32.add (local.get $wp) (local.get $t1)))))
                      (f32x4.mul (local.get $s2) (v128.load offset=0 (i32.add (local.get $wp) (local.get $t2)))))
                      (f32x4.mul (local.get $s3) (v128.load offset=0 (i32.add (local.get $wp) (local.get $t3)))))
                      (f32x4.mul (local.get $s4) (v128.load offset=0 (i32.add (local.get $wp) (local.get $t4)))))
                      (f32x4.mul (local.get $s5) (v128.load offset=0 (i32.add (local.get $wp) (local.get $t5)))))
                      (f32x4.mul (local.get $s6) (v128.load offset=0 (i32.add (local.get $wp) (local.get $t6)))))
                      (f32x4.mul (local.get $s7) (v128.load offset=0 (i32.add (local.get $wp) (local.get $t7)))))
                      (f32x4.mul (local.get $s8) (v128.load offset=0 (i32.add (local.get $wp) (local.get $t8))))))))
                    (local.set $out (i32.add (local.get $out) (i32.const 16)))
                    (local.set $co (i32.add (local.get $co) (i32.const 16)))
                    (br $coNext)))
                (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
                (br $owNext)))
            (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
            (br $ohNext)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bNext))))

  ;; dst[b, c, r] = src[b, r, c] for `batch` row-major [rows, cols] float32 matrices, rows % 4 == 0
  ;; and cols % 4 == 0: 4x4 blocks, each four loads, eight shuffles and four stores, walked in
  ;; 32-row bands so the destination lines a band writes stay in cache until they are full.
  (func (export "transpose_2d") (param $src i32) (param $dst i32) (param $batch i32) (param $rows i32) (param $cols i32)
    (local $b i32) (local $r0 i32) (local $r i32) (local $rEnd i32) (local $c i32) (local $p i32) (local $q i32)
    (local $srcRow i32) (local $dstRow i32) (local $matrix i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local.set $srcRow (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $dstRow (i32.shl (local.get $rows) (i32.const 2)))
    (local.set $matrix (i32.mul (local.get $srcRow) (local.get $rows)))
    (block $bDone
      (loop $bNext
        (br_if $bDone (i32.ge_s (local.get $b) (local.get $batch)))
        (local.set $r0 (i32.const 0))
        (block $bandDone
          (loop $bandNext
            (br_if $bandDone (i32.ge_s (local.get $r0) (local.get $rows)))
            (local.set $rEnd (i32.add (local.get $r0) (i32.const 32)))
            (if (i32.gt_s (local.get $rEnd) (local.get $rows)) (then (local.set $rEnd (local.get $rows))))
            (local.set $c (i32.const 0))
            (block $cDone
              (loop $cNext
                (br_if $cDone (i32.ge_s (local.get $c) (local.get $cols)))
                (local.set $r (local.get $r0))
                (block $rDone
                  (loop $rNext
                    (br_if $rDone (i32.ge_s (local.get $r) (local.get $rEnd)))
                    ;; p: src[r, c]; q: dst[c, r]
                    (local.set $p (i32.add (local.get $src) (i32.add (i32.mul (local.get $r) (local.get $srcRow)) (i32.shl (local.get $c) (i32.const 2)))))
                    (local.set $q (i32.add (local.get $dst) (i32.add (i32.mul (local.get $c) (local.get $dstRow)) (i32.shl (local.get $r) (i32.const 2)))))
                    (local.set $v0 (v128.load (local.get $p)))
                    (local.set $v1 (v128.load (i32.add (local.get $p) (local.get $srcRow))))
                    (local.set $v2 (v128.load (i32.add (local.get $p) (i32.shl (local.get $srcRow) (i32.const 1)))))
                    (local.set $v3 (v128.load (i32.add (local.get $p) (i32.mul (local.get $srcRow) (i32.const 3)))))
                    (call $store_transposed_4x4 (local.get $v0) (local.get $v1) (local.get $v2) (local.get $v3) (local.get $q) (local.get $dstRow))
                    (local.set $r (i32.add (local.get $r) (i32.const 4)))
                    (br $rNext)))
                (local.set $c (i32.add (local.get $c) (i32.const 4)))
                (br $cNext)))
            (local.set $r0 (i32.add (local.get $r0) (i32.const 32)))
            (br $bandNext)))
        (local.set $src (i32.add (local.get $src) (local.get $matrix)))
        (local.set $dst (i32.add (local.get $dst) (local.get $matrix)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bNext))))

  ;; Patch matrix of a convolution (NHWC x, C % 4 == 0) for images bFrom..bTo: row
  ;; ((b - bFrom)*outH + oh)*outW + ow holds, tap by tap (kh, kw), the C values of
  ;; x[b, oh*sH - pt + kh*dH, ow*sW - pl + kw*dW, :], zeros outside x: rows in dy's order and
  ;; columns in the filter's (kh, kw, c) order, for gemm_tn. Each tap is a run of C values.
  (func (export "im2col")
    (param $x i32) (param $out i32) (param $C i32) (param $inH i32) (param $inW i32)
    (param $outH i32) (param $outW i32) (param $KH i32) (param $KW i32) (param $sH i32) (param $sW i32)
    (param $dH i32) (param $dW i32) (param $pt i32) (param $pl i32) (param $bFrom i32) (param $bTo i32)
    (local $b i32) (local $oh i32) (local $ow i32) (local $kh i32) (local $kw i32) (local $ih i32) (local $iw i32)
    (local $cBytes i32) (local $src i32) (local $e i32)
    (local.set $cBytes (i32.shl (local.get $C) (i32.const 2)))
    (local.set $b (local.get $bFrom))
    (block $bDone
      (loop $bNext
        (br_if $bDone (i32.ge_s (local.get $b) (local.get $bTo)))
        (local.set $oh (i32.const 0))
        (block $ohDone
          (loop $ohNext
            (br_if $ohDone (i32.ge_s (local.get $oh) (local.get $outH)))
            (local.set $ow (i32.const 0))
            (block $owDone
              (loop $owNext
                (br_if $owDone (i32.ge_s (local.get $ow) (local.get $outW)))
                (local.set $kh (i32.const 0))
                (block $khDone
                  (loop $khNext
                    (br_if $khDone (i32.ge_s (local.get $kh) (local.get $KH)))
                    (local.set $ih (i32.add (i32.sub (i32.mul (local.get $oh) (local.get $sH)) (local.get $pt)) (i32.mul (local.get $kh) (local.get $dH))))
                    (local.set $kw (i32.const 0))
                    (block $kwDone
                      (loop $kwNext
                        (br_if $kwDone (i32.ge_s (local.get $kw) (local.get $KW)))
                        (local.set $iw (i32.add (i32.sub (i32.mul (local.get $ow) (local.get $sW)) (local.get $pl)) (i32.mul (local.get $kw) (local.get $dW))))
                        (if (i32.and (i32.lt_u (local.get $ih) (local.get $inH)) (i32.lt_u (local.get $iw) (local.get $inW)))
                          (then
                            (local.set $src (i32.add (local.get $x)
                              (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $inH)) (local.get $ih)) (local.get $inW)) (local.get $iw)) (local.get $cBytes))))
                            (local.set $e (i32.const 0))
                            (loop $copy
                              (v128.store (i32.add (local.get $out) (local.get $e)) (v128.load (i32.add (local.get $src) (local.get $e))))
                              (local.set $e (i32.add (local.get $e) (i32.const 16)))
                              (br_if $copy (i32.lt_u (local.get $e) (local.get $cBytes)))))
                          (else
                            (local.set $e (i32.const 0))
                            (loop $clear
                              (v128.store (i32.add (local.get $out) (local.get $e)) (v128.const i32x4 0 0 0 0))
                              (local.set $e (i32.add (local.get $e) (i32.const 16)))
                              (br_if $clear (i32.lt_u (local.get $e) (local.get $cBytes))))))
                        (local.set $out (i32.add (local.get $out) (local.get $cBytes)))
                        (local.set $kw (i32.add (local.get $kw) (i32.const 1)))
                        (br $kwNext)))
                    (local.set $kh (i32.add (local.get $kh) (i32.const 1)))
                    (br $khNext)))
                (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
                (br $owNext)))
            (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
            (br $ohNext)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bNext))))

  ;; c[m, n] (+)= sum over rows r of a[r, m] * b[r, n]: A^T B for row-major a [rows, M] and b [rows, N],
  ;; M % 4 == 0 and N % 4 == 0; c is zeroed first when $zero. A 1x1 convolution's filter gradient
  ;; (a = x, b = dy, rows = B*H*W) has a short, wide reduction that XNNPACK's product spends most of
  ;; its time packing b for. Tiles of 4 x 8 outputs stay in registers while 256-row slices of a and
  ;; b (in cache) stream past: per row one load of a, two of b, four lane broadcasts, 32 mul-adds.
  (func (export "gemm_tn") (param $a i32) (param $b i32) (param $c i32) (param $rows i32) (param $M i32) (param $N i32) (param $zero i32)
    (local $aRow i32) (local $bRow i32) (local $r0 i32) (local $count i32) (local $i i32) (local $j i32) (local $k i32)
    (local $pa i32) (local $pb i32) (local $pc i32) (local $wide i32)
    (local $va v128) (local $b0 v128) (local $b1 v128) (local $x v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $aRow (i32.shl (local.get $M) (i32.const 2)))
    (local.set $bRow (i32.shl (local.get $N) (i32.const 2)))
    (if (local.get $zero) (then (memory.fill (local.get $c) (i32.const 0) (i32.mul (local.get $aRow) (local.get $N)))))
    (block $sliceDone
      (loop $sliceNext
        (br_if $sliceDone (i32.ge_s (local.get $r0) (local.get $rows)))
        (local.set $count (i32.sub (local.get $rows) (local.get $r0)))
        (if (i32.gt_s (local.get $count) (i32.const 256)) (then (local.set $count (i32.const 256))))
        (local.set $i (i32.const 0))
        (block $iDone
          (loop $iNext
            (br_if $iDone (i32.ge_s (local.get $i) (local.get $M)))
            (local.set $j (i32.const 0))
            (block $jDone
              (loop $jNext
                (br_if $jDone (i32.ge_s (local.get $j) (local.get $N)))
                ;; 8 columns where they remain, else the last 4 (the second half of each row is unused)
                (local.set $wide (i32.le_s (i32.add (local.get $j) (i32.const 8)) (local.get $N)))
                (local.set $pc (i32.add (local.get $c) (i32.add (i32.mul (local.get $i) (local.get $bRow)) (i32.shl (local.get $j) (i32.const 2)))))
                (local.set $c00 (v128.load (local.get $pc)))
                (local.set $c10 (v128.load (i32.add (local.get $pc) (local.get $bRow))))
                (local.set $c20 (v128.load (i32.add (local.get $pc) (i32.shl (local.get $bRow) (i32.const 1)))))
                (local.set $c30 (v128.load (i32.add (local.get $pc) (i32.mul (local.get $bRow) (i32.const 3)))))
                (if (local.get $wide)
                  (then
                    (local.set $c01 (v128.load offset=16 (local.get $pc)))
                    (local.set $c11 (v128.load offset=16 (i32.add (local.get $pc) (local.get $bRow))))
                    (local.set $c21 (v128.load offset=16 (i32.add (local.get $pc) (i32.shl (local.get $bRow) (i32.const 1)))))
                    (local.set $c31 (v128.load offset=16 (i32.add (local.get $pc) (i32.mul (local.get $bRow) (i32.const 3)))))))
                (local.set $pa (i32.add (local.get $a) (i32.add (i32.mul (local.get $r0) (local.get $aRow)) (i32.shl (local.get $i) (i32.const 2)))))
                (local.set $pb (i32.add (local.get $b) (i32.add (i32.mul (local.get $r0) (local.get $bRow)) (i32.shl (local.get $j) (i32.const 2)))))
                (local.set $k (local.get $count))
                (if (local.get $wide)
                  (then
                    (loop $kNext
                      (local.set $va (v128.load (local.get $pa)))
                      (local.set $b0 (v128.load (local.get $pb)))
                      (local.set $b1 (v128.load offset=16 (local.get $pb)))
                      (local.set $x (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $va) (local.get $va)))
                      (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $b0))))
                      (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (local.get $b1))))
                      (local.set $x (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $va) (local.get $va)))
                      (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x) (local.get $b0))))
                      (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x) (local.get $b1))))
                      (local.set $x (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $va) (local.get $va)))
                      (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x) (local.get $b0))))
                      (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x) (local.get $b1))))
                      (local.set $x (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $va) (local.get $va)))
                      (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x) (local.get $b0))))
                      (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x) (local.get $b1))))
                      (local.set $pa (i32.add (local.get $pa) (local.get $aRow)))
                      (local.set $pb (i32.add (local.get $pb) (local.get $bRow)))
                      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
                      (br_if $kNext (local.get $k))))
                  (else
                    (loop $kNext
                      (local.set $va (v128.load (local.get $pa)))
                      (local.set $b0 (v128.load (local.get $pb)))
                      (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $va) (local.get $va)) (local.get $b0))))
                      (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $va) (local.get $va)) (local.get $b0))))
                      (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $va) (local.get $va)) (local.get $b0))))
                      (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $va) (local.get $va)) (local.get $b0))))
                      (local.set $pa (i32.add (local.get $pa) (local.get $aRow)))
                      (local.set $pb (i32.add (local.get $pb) (local.get $bRow)))
                      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
                      (br_if $kNext (local.get $k)))))
                (v128.store (local.get $pc) (local.get $c00))
                (v128.store (i32.add (local.get $pc) (local.get $bRow)) (local.get $c10))
                (v128.store (i32.add (local.get $pc) (i32.shl (local.get $bRow) (i32.const 1))) (local.get $c20))
                (v128.store (i32.add (local.get $pc) (i32.mul (local.get $bRow) (i32.const 3))) (local.get $c30))
                (if (local.get $wide)
                  (then
                    (v128.store offset=16 (local.get $pc) (local.get $c01))
                    (v128.store offset=16 (i32.add (local.get $pc) (local.get $bRow)) (local.get $c11))
                    (v128.store offset=16 (i32.add (local.get $pc) (i32.shl (local.get $bRow) (i32.const 1))) (local.get $c21))
                    (v128.store offset=16 (i32.add (local.get $pc) (i32.mul (local.get $bRow) (i32.const 3))) (local.get $c31))))
                (local.set $j (i32.add (local.get $j) (select (i32.const 8) (i32.const 4) (local.get $wide))))
                (br $jNext)))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $iNext)))
        (local.set $r0 (i32.add (local.get $r0) (local.get $count)))
        (br $sliceNext))))

  ;; MaxPoolGrad for 2x2 windows at stride 2 without padding (NHWC, C % 4 == 0), as max_pool_grad
  ;; computes it (the first maximum in window order gets dy; windows of -inf/NaN none) with the four
  ;; positions of a window unrolled. Positions outside every window (odd sizes) must be zeroed by
  ;; the caller ($zero clears dx first).
  (func (export "max_pool_grad_2x2")
    (param $x i32) (param $dy i32) (param $dx i32) (param $batch i32) (param $inH i32) (param $inW i32) (param $C i32)
    (param $outH i32) (param $outW i32) (param $zero i32)
    (local $b i32) (local $oh i32) (local $ow i32) (local $ch i32) (local $cBytes i32) (local $rowBytes i32)
    (local $p i32) (local $q i32) (local $g v128) (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $best v128) (local $open v128) (local $m v128)
    (local.set $cBytes (i32.shl (local.get $C) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $inW) (local.get $cBytes)))
    (if (local.get $zero)
      (then (memory.fill (local.get $dx) (i32.const 0)
        (i32.mul (i32.mul (local.get $batch) (local.get $inH)) (local.get $rowBytes)))))
    (block $bDone
      (loop $bNext
        (br_if $bDone (i32.ge_s (local.get $b) (local.get $batch)))
        (local.set $oh (i32.const 0))
        (block $ohDone
          (loop $ohNext
            (br_if $ohDone (i32.ge_s (local.get $oh) (local.get $outH)))
            ;; byte offset of x[b, 2*oh, 0, 0]
            (local.set $p (i32.mul (i32.add (i32.mul (local.get $b) (local.get $inH)) (i32.shl (local.get $oh) (i32.const 1))) (local.get $rowBytes)))
            (local.set $ow (i32.const 0))
            (block $owDone
              (loop $owNext
                (br_if $owDone (i32.ge_s (local.get $ow) (local.get $outW)))
                (local.set $ch (i32.const 0))
                (block $chDone
                  (loop $chNext
                    (br_if $chDone (i32.ge_u (local.get $ch) (local.get $cBytes)))
                    (local.set $q (i32.add (local.get $p) (local.get $ch)))
                    (local.set $v0 (v128.load (i32.add (local.get $x) (local.get $q))))
                    (local.set $v1 (v128.load (i32.add (i32.add (local.get $x) (local.get $q)) (local.get $cBytes))))
                    (local.set $v2 (v128.load (i32.add (i32.add (local.get $x) (local.get $q)) (local.get $rowBytes))))
                    (local.set $v3 (v128.load (i32.add (i32.add (i32.add (local.get $x) (local.get $q)) (local.get $rowBytes)) (local.get $cBytes))))
                    (local.set $best (f32x4.pmax (f32x4.pmax (f32x4.pmax (f32x4.pmax (v128.const f32x4 -inf -inf -inf -inf) (local.get $v0)) (local.get $v1)) (local.get $v2)) (local.get $v3)))
                    (local.set $g (v128.load (local.get $dy)))
                    (local.set $open (f32x4.gt (local.get $best) (v128.const f32x4 -inf -inf -inf -inf)))
                    (local.set $m (v128.and (local.get $open) (f32x4.eq (local.get $v0) (local.get $best))))
                    (v128.store (i32.add (local.get $dx) (local.get $q)) (v128.and (local.get $g) (local.get $m)))
                    (local.set $open (v128.andnot (local.get $open) (local.get $m)))
                    (local.set $m (v128.and (local.get $open) (f32x4.eq (local.get $v1) (local.get $best))))
                    (v128.store (i32.add (i32.add (local.get $dx) (local.get $q)) (local.get $cBytes)) (v128.and (local.get $g) (local.get $m)))
                    (local.set $open (v128.andnot (local.get $open) (local.get $m)))
                    (local.set $m (v128.and (local.get $open) (f32x4.eq (local.get $v2) (local.get $best))))
                    (v128.store (i32.add (i32.add (local.get $dx) (local.get $q)) (local.get $rowBytes)) (v128.and (local.get $g) (local.get $m)))
                    (local.set $open (v128.andnot (local.get $open) (local.get $m)))
                    (local.set $m (v128.and (local.get $open) (f32x4.eq (local.get $v3) (local.get $best))))
                    (v128.store (i32.add (i32.add (i32.add (local.get $dx) (local.get $q)) (local.get $rowBytes)) (local.get $cBytes))
                      (v128.and (local.get $g) (local.get $m)))
                    (local.set $dy (i32.add (local.get $dy) (i32.const 16)))
                    (local.set $ch (i32.add (local.get $ch) (i32.const 16)))
                    (br $chNext)))
                (local.set $p (i32.add (local.get $p) (i32.shl (local.get $cBytes) (i32.const 1))))
                (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
                (br $owNext)))
            (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
            (br $ohNext)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bNext))))

  ;; Filter gradient of conv2d_c1 (one-channel NHWC x, unpadded, 3x3, dilation 1, Co % 4 == 0):
  ;; dw[kh, kw, co] = sum over b, oh, ow of x[b, oh*sH + kh, ow*sW + kw] * dy[b, oh, ow, co].
  ;; Per image and 4 output channels the 9 sums stay in registers; dw (zeroed here) takes each
  ;; image's sums, so one image's dy, re-read for every 4 channels, stays in cache.
  (func (export "conv2d_c1_filter_grad")
    (param $x i32) (param $dy i32) (param $dw i32) (param $B i32) (param $inH i32) (param $inW i32)
    (param $outH i32) (param $outW i32) (param $Co i32) (param $sH i32) (param $sW i32)
    (local $b i32) (local $oh i32) (local $ow i32) (local $co i32) (local $coBytes i32) (local $p i32) (local $row i32) (local $q i32)
    (local $image i32) (local $g v128)
    (local $t0 i32) (local $t1 i32) (local $t2 i32) (local $t3 i32) (local $t4 i32) (local $t5 i32) (local $t6 i32) (local $t7 i32) (local $t8 i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128) (local $a8 v128)
    (local.set $coBytes (i32.shl (local.get $Co) (i32.const 2)))
    (local.set $t0 (i32.mul (local.get $coBytes) (i32.const 0)))
    (local.set $t1 (i32.mul (local.get $coBytes) (i32.const 1)))
    (local.set $t2 (i32.mul (local.get $coBytes) (i32.const 2)))
    (local.set $t3 (i32.mul (local.get $coBytes) (i32.const 3)))
    (local.set $t4 (i32.mul (local.get $coBytes) (i32.const 4)))
    (local.set $t5 (i32.mul (local.get $coBytes) (i32.const 5)))
    (local.set $t6 (i32.mul (local.get $coBytes) (i32.const 6)))
    (local.set $t7 (i32.mul (local.get $coBytes) (i32.const 7)))
    (local.set $t8 (i32.mul (local.get $coBytes) (i32.const 8)))
    (memory.fill (local.get $dw) (i32.const 0) (i32.mul (local.get $coBytes) (i32.const 9)))
    (block $bDone
      (loop $bNext
        (br_if $bDone (i32.ge_s (local.get $b) (local.get $B)))
        (local.set $image (i32.add (local.get $x) (i32.shl (i32.mul (i32.mul (local.get $b) (local.get $inH)) (local.get $inW)) (i32.const 2))))
        (local.set $co (i32.const 0))
        (block $coDone
          (loop $coNext
            (br_if $coDone (i32.ge_u (local.get $co) (local.get $coBytes)))
            (local.set $a0 (v128.load (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t0)))))
            (local.set $a1 (v128.load (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t1)))))
            (local.set $a2 (v128.load (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t2)))))
            (local.set $a3 (v128.load (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t3)))))
            (local.set $a4 (v128.load (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t4)))))
            (local.set $a5 (v128.load (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t5)))))
            (local.set $a6 (v128.load (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t6)))))
            (local.set $a7 (v128.load (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t7)))))
            (local.set $a8 (v128.load (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t8)))))
            ;; dy[b, 0, 0, co]
            (local.set $q (i32.add (i32.add (local.get $dy) (local.get $co))
              (i32.mul (i32.mul (i32.mul (local.get $b) (local.get $outH)) (local.get $outW)) (local.get $coBytes))))
            (local.set $oh (i32.const 0))
            (block $ohDone
              (loop $ohNext
                (br_if $ohDone (i32.ge_s (local.get $oh) (local.get $outH)))
                (local.set $row (i32.add (local.get $image) (i32.shl (i32.mul (i32.mul (local.get $oh) (local.get $sH)) (local.get $inW)) (i32.const 2))))
                (local.set $ow (i32.const 0))
                (block $owDone
                  (loop $owNext
                    (br_if $owDone (i32.ge_s (local.get $ow) (local.get $outW)))
                    (local.set $p (i32.add (local.get $row) (i32.shl (i32.mul (local.get $ow) (local.get $sW)) (i32.const 2))))
                    (local.set $g (v128.load (local.get $q)))
                    (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $g) (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 0) (local.get $inW)) (i32.const 0)) (i32.const 2)))))))
                    (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $g) (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 0) (local.get $inW)) (i32.const 1)) (i32.const 2)))))))
                    (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $g) (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 0) (local.get $inW)) (i32.const 2)) (i32.const 2)))))))
                    (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $g) (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 1) (local.get $inW)) (i32.const 0)) (i32.const 2)))))))
                    (local.set $a4 (f32x4.add (local.get $a4) (f32x4.mul (local.get $g) (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 1) (local.get $inW)) (i32.const 1)) (i32.const 2)))))))
                    (local.set $a5 (f32x4.add (local.get $a5) (f32x4.mul (local.get $g) (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 1) (local.get $inW)) (i32.const 2)) (i32.const 2)))))))
                    (local.set $a6 (f32x4.add (local.get $a6) (f32x4.mul (local.get $g) (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 2) (local.get $inW)) (i32.const 0)) (i32.const 2)))))))
                    (local.set $a7 (f32x4.add (local.get $a7) (f32x4.mul (local.get $g) (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 2) (local.get $inW)) (i32.const 1)) (i32.const 2)))))))
                    (local.set $a8 (f32x4.add (local.get $a8) (f32x4.mul (local.get $g) (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 2) (local.get $inW)) (i32.const 2)) (i32.const 2)))))))
                    (local.set $q (i32.add (local.get $q) (local.get $coBytes)))
                    (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
                    (br $owNext)))
                (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
                (br $ohNext)))
            (v128.store (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t0))) (local.get $a0))
            (v128.store (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t1))) (local.get $a1))
            (v128.store (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t2))) (local.get $a2))
            (v128.store (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t3))) (local.get $a3))
            (v128.store (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t4))) (local.get $a4))
            (v128.store (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t5))) (local.get $a5))
            (v128.store (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t6))) (local.get $a6))
            (v128.store (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t7))) (local.get $a7))
            (v128.store (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t8))) (local.get $a8))
            (local.set $co (i32.add (local.get $co) (i32.const 16)))
            (br $coNext)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bNext))))

  ;; conv2d_c1 with its bias and ReLU (stride 1) followed by a 2x2 max pool at stride 2, in one pass that
  ;; never writes the full-size feature map: pooled[b, ph, pw, co] = max over the window of
  ;; max(0, bias[co] + conv), and argmax[b, ph, pw, co] (i32) the window position (0..3, row order) of
  ;; the first maximum, as MaxPoolGrad picks it. The four positions share one 4x4 input patch and
  ;; each weight vector is loaded once for all four. PH, PW = floor(conv output size / 2); Co % 4 == 0.
  (func (export "conv2d_c1_relu_pool")
    (param $x i32) (param $w i32) (param $bias i32) (param $pooled i32) (param $argmax i32)
    (param $B i32) (param $inH i32) (param $inW i32) (param $PH i32) (param $PW i32) (param $Co i32)
    (local $b i32) (local $ph i32) (local $pw i32) (local $co i32) (local $coBytes i32) (local $p i32) (local $q i32)
    (local $t0 i32) (local $t1 i32) (local $t2 i32) (local $t3 i32) (local $t4 i32) (local $t5 i32) (local $t6 i32) (local $t7 i32) (local $t8 i32)
    (local $s00 v128) (local $s01 v128) (local $s02 v128) (local $s03 v128) (local $s10 v128) (local $s11 v128) (local $s12 v128) (local $s13 v128) (local $s20 v128) (local $s21 v128) (local $s22 v128) (local $s23 v128) (local $s30 v128) (local $s31 v128) (local $s32 v128) (local $s33 v128)
    (local $wp i32) (local $wt v128) (local $bv v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $best v128) (local $idx v128)
    (local.set $coBytes (i32.shl (local.get $Co) (i32.const 2)))
    (local.set $t0 (i32.mul (local.get $coBytes) (i32.const 0)))
    (local.set $t1 (i32.mul (local.get $coBytes) (i32.const 1)))
    (local.set $t2 (i32.mul (local.get $coBytes) (i32.const 2)))
    (local.set $t3 (i32.mul (local.get $coBytes) (i32.const 3)))
    (local.set $t4 (i32.mul (local.get $coBytes) (i32.const 4)))
    (local.set $t5 (i32.mul (local.get $coBytes) (i32.const 5)))
    (local.set $t6 (i32.mul (local.get $coBytes) (i32.const 6)))
    (local.set $t7 (i32.mul (local.get $coBytes) (i32.const 7)))
    (local.set $t8 (i32.mul (local.get $coBytes) (i32.const 8)))
    (block $bDone
      (loop $bNext
        (br_if $bDone (i32.ge_s (local.get $b) (local.get $B)))
        (local.set $ph (i32.const 0))
        (block $phDone
          (loop $phNext
            (br_if $phDone (i32.ge_s (local.get $ph) (local.get $PH)))
            (local.set $pw (i32.const 0))
            (block $pwDone
              (loop $pwNext
                (br_if $pwDone (i32.ge_s (local.get $pw) (local.get $PW)))
                ;; x[b, 2*ph, 2*pw]: the 4x4 input patch under the pooling window's four 3x3 taps
                (local.set $p (i32.add (local.get $x) (i32.shl
                  (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $inH)) (i32.shl (local.get $ph) (i32.const 1))) (local.get $inW))
                    (i32.shl (local.get $pw) (i32.const 1))) (i32.const 2))))
                (local.set $s00 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 0) (local.get $inW)) (i32.const 0)) (i32.const 2)))))
                (local.set $s01 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 0) (local.get $inW)) (i32.const 1)) (i32.const 2)))))
                (local.set $s02 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 0) (local.get $inW)) (i32.const 2)) (i32.const 2)))))
                (local.set $s03 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 0) (local.get $inW)) (i32.const 3)) (i32.const 2)))))
                (local.set $s10 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 1) (local.get $inW)) (i32.const 0)) (i32.const 2)))))
                (local.set $s11 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 1) (local.get $inW)) (i32.const 1)) (i32.const 2)))))
                (local.set $s12 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 1) (local.get $inW)) (i32.const 2)) (i32.const 2)))))
                (local.set $s13 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 1) (local.get $inW)) (i32.const 3)) (i32.const 2)))))
                (local.set $s20 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 2) (local.get $inW)) (i32.const 0)) (i32.const 2)))))
                (local.set $s21 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 2) (local.get $inW)) (i32.const 1)) (i32.const 2)))))
                (local.set $s22 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 2) (local.get $inW)) (i32.const 2)) (i32.const 2)))))
                (local.set $s23 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 2) (local.get $inW)) (i32.const 3)) (i32.const 2)))))
                (local.set $s30 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 3) (local.get $inW)) (i32.const 0)) (i32.const 2)))))
                (local.set $s31 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 3) (local.get $inW)) (i32.const 1)) (i32.const 2)))))
                (local.set $s32 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 3) (local.get $inW)) (i32.const 2)) (i32.const 2)))))
                (local.set $s33 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 3) (local.get $inW)) (i32.const 3)) (i32.const 2)))))
                (local.set $co (i32.const 0))
                (block $coDone
                  (loop $coNext
                    (br_if $coDone (i32.ge_u (local.get $co) (local.get $coBytes)))
                    (local.set $wp (i32.add (local.get $w) (local.get $co)))
                    (local.set $bv (v128.load (i32.add (local.get $bias) (local.get $co))))
                    (local.set $wt (v128.load (i32.add (local.get $wp) (local.get $t0))))
                    (local.set $a0 (f32x4.mul (local.get $s00) (local.get $wt)))
                    (local.set $a1 (f32x4.mul (local.get $s01) (local.get $wt)))
                    (local.set $a2 (f32x4.mul (local.get $s10) (local.get $wt)))
                    (local.set $a3 (f32x4.mul (local.get $s11) (local.get $wt)))
                    (local.set $wt (v128.load (i32.add (local.get $wp) (local.get $t1))))
                    (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s01) (local.get $wt))))
                    (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s02) (local.get $wt))))
                    (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s11) (local.get $wt))))
                    (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s12) (local.get $wt))))
                    (local.set $wt (v128.load (i32.add (local.get $wp) (local.get $t2))))
                    (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s02) (local.get $wt))))
                    (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s03) (local.get $wt))))
                    (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s12) (local.get $wt))))
                    (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s13) (local.get $wt))))
                    (local.set $wt (v128.load (i32.add (local.get $wp) (local.get $t3))))
                    (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s10) (local.get $wt))))
                    (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s11) (local.get $wt))))
                    (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s20) (local.get $wt))))
                    (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s21) (local.get $wt))))
                    (local.set $wt (v128.load (i32.add (local.get $wp) (local.get $t4))))
                    (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s11) (local.get $wt))))
                    (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s12) (local.get $wt))))
                    (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s21) (local.get $wt))))
                    (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s22) (local.get $wt))))
                    (local.set $wt (v128.load (i32.add (local.get $wp) (local.get $t5))))
                    (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s12) (local.get $wt))))
                    (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s13) (local.get $wt))))
                    (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s22) (local.get $wt))))
                    (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s23) (local.get $wt))))
                    (local.set $wt (v128.load (i32.add (local.get $wp) (local.get $t6))))
                    (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s20) (local.get $wt))))
                    (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s21) (local.get $wt))))
                    (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s30) (local.get $wt))))
                    (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s31) (local.get $wt))))
                    (local.set $wt (v128.load (i32.add (local.get $wp) (local.get $t7))))
                    (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s21) (local.get $wt))))
                    (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s22) (local.get $wt))))
                    (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s31) (local.get $wt))))
                    (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s32) (local.get $wt))))
                    (local.set $wt (v128.load (i32.add (local.get $wp) (local.get $t8))))
                    (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s22) (local.get $wt))))
                    (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s23) (local.get $wt))))
                    (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s32) (local.get $wt))))
                    (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s33) (local.get $wt))))
                    (local.set $a0 (f32x4.pmax (v128.const f32x4 0 0 0 0) (f32x4.add (local.get $a0) (local.get $bv))))
                    (local.set $a1 (f32x4.pmax (v128.const f32x4 0 0 0 0) (f32x4.add (local.get $a1) (local.get $bv))))
                    (local.set $a2 (f32x4.pmax (v128.const f32x4 0 0 0 0) (f32x4.add (local.get $a2) (local.get $bv))))
                    (local.set $a3 (f32x4.pmax (v128.const f32x4 0 0 0 0) (f32x4.add (local.get $a3) (local.get $bv))))
                    (local.set $best (f32x4.pmax (f32x4.pmax (f32x4.pmax (local.get $a0) (local.get $a1)) (local.get $a2)) (local.get $a3)))
                    (local.set $idx (v128.const i32x4 3 3 3 3))
                    (local.set $idx (v128.bitselect (v128.const i32x4 2 2 2 2) (local.get $idx) (f32x4.eq (local.get $a2) (local.get $best))))
                    (local.set $idx (v128.bitselect (v128.const i32x4 1 1 1 1) (local.get $idx) (f32x4.eq (local.get $a1) (local.get $best))))
                    (local.set $idx (v128.bitselect (v128.const i32x4 0 0 0 0) (local.get $idx) (f32x4.eq (local.get $a0) (local.get $best))))
                    (v128.store (local.get $pooled) (local.get $best))
                    (v128.store (local.get $argmax) (local.get $idx))
                    (local.set $pooled (i32.add (local.get $pooled) (i32.const 16)))
                    (local.set $argmax (i32.add (local.get $argmax) (i32.const 16)))
                    (local.set $co (i32.add (local.get $co) (i32.const 16)))
                    (br $coNext)))
                (local.set $pw (i32.add (local.get $pw) (i32.const 1)))
                (br $pwNext)))
            (local.set $ph (i32.add (local.get $ph) (i32.const 1)))
            (br $phNext)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bNext))))

  ;; The filter and bias gradients of conv2d_c1_relu_pool from dpooled, pooled and argmax alone:
  ;; g = pooled > 0 ? dpooled : 0 goes to the window position argmax names, so
  ;; dw[kh, kw, co] = sum of g * x[b, 2ph + dy + kh, 2pw + dx + kw] and db[co] = sum of g, where
  ;; (dy, dx) is that position: per lane, g is split into four masked copies, one per position.
  ;; dw and db are zeroed here and accumulated pixel by pixel (they stay in L1).
  (func (export "conv2d_c1_relu_pool_grad")
    (param $x i32) (param $dp i32) (param $pooled i32) (param $argmax i32) (param $dw i32) (param $db i32)
    (param $B i32) (param $inH i32) (param $inW i32) (param $PH i32) (param $PW i32) (param $Co i32)
    (local $b i32) (local $ph i32) (local $pw i32) (local $co i32) (local $coBytes i32) (local $p i32) (local $q i32)
    (local $t0 i32) (local $t1 i32) (local $t2 i32) (local $t3 i32) (local $t4 i32) (local $t5 i32) (local $t6 i32) (local $t7 i32) (local $t8 i32)
    (local $s00 v128) (local $s01 v128) (local $s02 v128) (local $s03 v128) (local $s10 v128) (local $s11 v128) (local $s12 v128) (local $s13 v128) (local $s20 v128) (local $s21 v128) (local $s22 v128) (local $s23 v128) (local $s30 v128) (local $s31 v128) (local $s32 v128) (local $s33 v128)
    (local $d i32) (local $g v128) (local $arg v128) (local $g0 v128) (local $g1 v128) (local $g2 v128) (local $g3 v128)
    (local.set $coBytes (i32.shl (local.get $Co) (i32.const 2)))
    (local.set $t0 (i32.mul (local.get $coBytes) (i32.const 0)))
    (local.set $t1 (i32.mul (local.get $coBytes) (i32.const 1)))
    (local.set $t2 (i32.mul (local.get $coBytes) (i32.const 2)))
    (local.set $t3 (i32.mul (local.get $coBytes) (i32.const 3)))
    (local.set $t4 (i32.mul (local.get $coBytes) (i32.const 4)))
    (local.set $t5 (i32.mul (local.get $coBytes) (i32.const 5)))
    (local.set $t6 (i32.mul (local.get $coBytes) (i32.const 6)))
    (local.set $t7 (i32.mul (local.get $coBytes) (i32.const 7)))
    (local.set $t8 (i32.mul (local.get $coBytes) (i32.const 8)))
    (memory.fill (local.get $dw) (i32.const 0) (i32.mul (local.get $coBytes) (i32.const 9)))
    (memory.fill (local.get $db) (i32.const 0) (local.get $coBytes))
    (block $bDone
      (loop $bNext
        (br_if $bDone (i32.ge_s (local.get $b) (local.get $B)))
        (local.set $ph (i32.const 0))
        (block $phDone
          (loop $phNext
            (br_if $phDone (i32.ge_s (local.get $ph) (local.get $PH)))
            (local.set $pw (i32.const 0))
            (block $pwDone
              (loop $pwNext
                (br_if $pwDone (i32.ge_s (local.get $pw) (local.get $PW)))
                ;; x[b, 2*ph, 2*pw]: the 4x4 input patch under the pooling window's four 3x3 taps
                (local.set $p (i32.add (local.get $x) (i32.shl
                  (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $inH)) (i32.shl (local.get $ph) (i32.const 1))) (local.get $inW))
                    (i32.shl (local.get $pw) (i32.const 1))) (i32.const 2))))
                (local.set $s00 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 0) (local.get $inW)) (i32.const 0)) (i32.const 2)))))
                (local.set $s01 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 0) (local.get $inW)) (i32.const 1)) (i32.const 2)))))
                (local.set $s02 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 0) (local.get $inW)) (i32.const 2)) (i32.const 2)))))
                (local.set $s03 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 0) (local.get $inW)) (i32.const 3)) (i32.const 2)))))
                (local.set $s10 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 1) (local.get $inW)) (i32.const 0)) (i32.const 2)))))
                (local.set $s11 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 1) (local.get $inW)) (i32.const 1)) (i32.const 2)))))
                (local.set $s12 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 1) (local.get $inW)) (i32.const 2)) (i32.const 2)))))
                (local.set $s13 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 1) (local.get $inW)) (i32.const 3)) (i32.const 2)))))
                (local.set $s20 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 2) (local.get $inW)) (i32.const 0)) (i32.const 2)))))
                (local.set $s21 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 2) (local.get $inW)) (i32.const 1)) (i32.const 2)))))
                (local.set $s22 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 2) (local.get $inW)) (i32.const 2)) (i32.const 2)))))
                (local.set $s23 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 2) (local.get $inW)) (i32.const 3)) (i32.const 2)))))
                (local.set $s30 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 3) (local.get $inW)) (i32.const 0)) (i32.const 2)))))
                (local.set $s31 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 3) (local.get $inW)) (i32.const 1)) (i32.const 2)))))
                (local.set $s32 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 3) (local.get $inW)) (i32.const 2)) (i32.const 2)))))
                (local.set $s33 (v128.load32_splat (i32.add (local.get $p) (i32.shl (i32.add (i32.mul (i32.const 3) (local.get $inW)) (i32.const 3)) (i32.const 2)))))
                (local.set $co (i32.const 0))
                (block $coDone
                  (loop $coNext
                    (br_if $coDone (i32.ge_u (local.get $co) (local.get $coBytes)))
                    (local.set $g (v128.and (v128.load (local.get $dp))
                      (f32x4.gt (v128.load (local.get $pooled)) (v128.const f32x4 0 0 0 0))))
                    (local.set $arg (v128.load (local.get $argmax)))
                    (local.set $d (i32.add (local.get $db) (local.get $co)))
                    (v128.store (local.get $d) (f32x4.add (v128.load (local.get $d)) (local.get $g)))
                    (local.set $g0 (v128.and (local.get $g) (i32x4.eq (local.get $arg) (v128.const i32x4 0 0 0 0))))
                    (local.set $g1 (v128.and (local.get $g) (i32x4.eq (local.get $arg) (v128.const i32x4 1 1 1 1))))
                    (local.set $g2 (v128.and (local.get $g) (i32x4.eq (local.get $arg) (v128.const i32x4 2 2 2 2))))
                    (local.set $g3 (v128.and (local.get $g) (i32x4.eq (local.get $arg) (v128.const i32x4 3 3 3 3))))
                    (local.set $d (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t0))))
                    (v128.store (local.get $d) (f32x4.add (v128.load (local.get $d)) (f32x4.add (f32x4.add (f32x4.mul (local.get $g0) (local.get $s00)) (f32x4.mul (local.get $g1) (local.get $s01))) (f32x4.add (f32x4.mul (local.get $g2) (local.get $s10)) (f32x4.mul (local.get $g3) (local.get $s11))))))
                    (local.set $d (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t1))))
                    (v128.store (local.get $d) (f32x4.add (v128.load (local.get $d)) (f32x4.add (f32x4.add (f32x4.mul (local.get $g0) (local.get $s01)) (f32x4.mul (local.get $g1) (local.get $s02))) (f32x4.add (f32x4.mul (local.get $g2) (local.get $s11)) (f32x4.mul (local.get $g3) (local.get $s12))))))
                    (local.set $d (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t2))))
                    (v128.store (local.get $d) (f32x4.add (v128.load (local.get $d)) (f32x4.add (f32x4.add (f32x4.mul (local.get $g0) (local.get $s02)) (f32x4.mul (local.get $g1) (local.get $s03))) (f32x4.add (f32x4.mul (local.get $g2) (local.get $s12)) (f32x4.mul (local.get $g3) (local.get $s13))))))
                    (local.set $d (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t3))))
                    (v128.store (local.get $d) (f32x4.add (v128.load (local.get $d)) (f32x4.add (f32x4.add (f32x4.mul (local.get $g0) (local.get $s10)) (f32x4.mul (local.get $g1) (local.get $s11))) (f32x4.add (f32x4.mul (local.get $g2) (local.get $s20)) (f32x4.mul (local.get $g3) (local.get $s21))))))
                    (local.set $d (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t4))))
                    (v128.store (local.get $d) (f32x4.add (v128.load (local.get $d)) (f32x4.add (f32x4.add (f32x4.mul (local.get $g0) (local.get $s11)) (f32x4.mul (local.get $g1) (local.get $s12))) (f32x4.add (f32x4.mul (local.get $g2) (local.get $s21)) (f32x4.mul (local.get $g3) (local.get $s22))))))
                    (local.set $d (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t5))))
                    (v128.store (local.get $d) (f32x4.add (v128.load (local.get $d)) (f32x4.add (f32x4.add (f32x4.mul (local.get $g0) (local.get $s12)) (f32x4.mul (local.get $g1) (local.get $s13))) (f32x4.add (f32x4.mul (local.get $g2) (local.get $s22)) (f32x4.mul (local.get $g3) (local.get $s23))))))
                    (local.set $d (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t6))))
                    (v128.store (local.get $d) (f32x4.add (v128.load (local.get $d)) (f32x4.add (f32x4.add (f32x4.mul (local.get $g0) (local.get $s20)) (f32x4.mul (local.get $g1) (local.get $s21))) (f32x4.add (f32x4.mul (local.get $g2) (local.get $s30)) (f32x4.mul (local.get $g3) (local.get $s31))))))
                    (local.set $d (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t7))))
                    (v128.store (local.get $d) (f32x4.add (v128.load (local.get $d)) (f32x4.add (f32x4.add (f32x4.mul (local.get $g0) (local.get $s21)) (f32x4.mul (local.get $g1) (local.get $s22))) (f32x4.add (f32x4.mul (local.get $g2) (local.get $s31)) (f32x4.mul (local.get $g3) (local.get $s32))))))
                    (local.set $d (i32.add (local.get $dw) (i32.add (local.get $co) (local.get $t8))))
                    (v128.store (local.get $d) (f32x4.add (v128.load (local.get $d)) (f32x4.add (f32x4.add (f32x4.mul (local.get $g0) (local.get $s22)) (f32x4.mul (local.get $g1) (local.get $s23))) (f32x4.add (f32x4.mul (local.get $g2) (local.get $s32)) (f32x4.mul (local.get $g3) (local.get $s33))))))
                    (local.set $dp (i32.add (local.get $dp) (i32.const 16)))
                    (local.set $pooled (i32.add (local.get $pooled) (i32.const 16)))
                    (local.set $argmax (i32.add (local.get $argmax) (i32.const 16)))
                    (local.set $co (i32.add (local.get $co) (i32.const 16)))
                    (br $coNext)))
                (local.set $pw (i32.add (local.get $pw) (i32.const 1)))
                (br $pwNext)))
            (local.set $ph (i32.add (local.get $ph) (i32.const 1)))
            (br $phNext)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bNext))))
)
